"""S3Website against a real S3 API: moto's server on 127.0.0.1, started by this module.

The live URL in these tests is the path-style object URL of index.html (``<endpoint>/<bucket>/<folder>/index.html``).
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer
from prefect.filesystems import LocalFileSystem
from prefect_aws import AwsCredentials, S3Bucket
from pydantic import SecretStr

from blocks.targets.base import DeploymentTarget, SiteState
from blocks.targets.s3_website import MANIFEST_NAME, S3Website, _translate
from core.errors import AuthFailed, ProviderRejected, ProviderUnavailable
from core.snapshots import SnapshotStore
from tests.contracts import samples
from tests.contracts.deployment_suite import Deployer, DeploymentTargetContract

pytestmark = pytest.mark.integration

BUCKET = "pombolt-sites"
SECRET = "moto-secret-key-value-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def s3(moto_url: str) -> Any:
    """A client on an empty bucket (moto is reset before every test)."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=5)
    client = boto3.client(
        "s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key=SECRET
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def _bucket(url: str, name: str = BUCKET, folder: str = "") -> S3Bucket:
    return S3Bucket(
        bucket_name=name,
        bucket_folder=folder,
        credentials=AwsCredentials(
            aws_access_key_id="testing",
            aws_secret_access_key=SecretStr(SECRET),
            region_name="us-east-1",
            aws_client_parameters={"endpoint_url": url},
        ),
    )


class TestS3WebsiteContract(DeploymentTargetContract):
    @pytest.fixture
    def target(self, s3: Any, moto_url: str) -> DeploymentTarget:
        return S3Website(bucket=_bucket(moto_url), public_read_acl=True)


@pytest.fixture
def target(s3: Any, moto_url: str) -> S3Website:
    return S3Website(bucket=_bucket(moto_url, folder="web"), prefix="sites", public_read_acl=True)


@pytest.fixture
def deployer(target: S3Website, tmp_path: Path) -> Deployer:
    return Deployer(target, SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), "t1"), "S3 App")


def _keys(s3: Any) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def test_block_identity() -> None:
    assert S3Website.get_block_type_slug() == "pombolt-s3-website"


def test_live_url_is_the_path_style_url_of_index_html(deployer: Deployer, moto_url: str, s3: Any) -> None:
    result = deployer.deploy(samples.small_site())
    folder = f"web/sites/{result.state.site_id}"
    assert result.live_url == f"{moto_url}/{BUCKET}/{folder}/index.html"
    assert _keys(s3) == {f"{folder}/{f.path}" for f in samples.small_site()} | {f"{folder}/{MANIFEST_NAME}"}


def test_content_type_and_cache_control_are_served(deployer: Deployer) -> None:
    result = deployer.deploy(samples.small_site())
    expected = {
        "index.html": ("text/html; charset=utf-8", "no-cache"),
        "app.js": ("text/javascript; charset=utf-8", "public, max-age=300"),
        "styles.css": ("text/css; charset=utf-8", "public, max-age=300"),
        "img/logo.png": ("image/png", "public, max-age=300"),
        "fonts/x.woff2": ("font/woff2", "public, max-age=300"),
    }
    with httpx.Client(timeout=5) as http:
        for path, (ctype, cache) in expected.items():
            response = http.get(httpx.URL(result.live_url).join(path))
            assert response.status_code == 200, path
            assert (response.headers["content-type"], response.headers["cache-control"]) == (ctype, cache), path


def test_headers_changing_alone_reuploads_and_a_base_url_sets_the_live_url(
    deployer: Deployer, target: S3Website
) -> None:
    deployer.deploy(samples.small_site())
    deployer.target = target.model_copy(
        update={"asset_cache_control": "public, max-age=31536000, immutable", "base_url": "https://sites.example.com/"}
    )
    result = deployer.deploy(samples.small_site())
    assert result.files_uploaded == 4  # every asset, not index.html
    assert result.live_url == f"https://sites.example.com/{result.state.site_id}/"


def test_remove_deletes_every_object_of_the_site(deployer: Deployer, target: S3Website, s3: Any) -> None:
    other = Deployer(target, deployer.snapshots, "Another")
    kept = other.deploy(samples.small_site())
    result = deployer.deploy(samples.small_site())
    target.remove(result.state)
    assert all(str(result.state.site_id) not in k for k in _keys(s3))
    assert any(str(kept.state.site_id) in k for k in _keys(s3))
    with httpx.Client(timeout=5) as http:
        assert http.get(result.live_url).status_code == 404
    target.remove(result.state)
    target.remove(SiteState())


def test_bad_credentials_and_missing_bucket_are_our_errors(moto_url: str, s3: Any) -> None:
    with pytest.raises(ProviderRejected, match=r"NoSuchBucket.*create the bucket"):
        S3Website(bucket=_bucket(moto_url, name="no-such-bucket")).preflight()
    S3Website(bucket=_bucket(moto_url)).preflight()


def test_botocore_errors_become_ours_with_s3s_message() -> None:
    denied = ClientError(
        {
            "Error": {"Code": "InvalidAccessKeyId", "Message": "The key you provided does not exist"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "PutObject",
    )
    auth = _translate(denied, "PutObject index.html")
    assert isinstance(auth, AuthFailed) and auth.status == 403
    assert "InvalidAccessKeyId: The key you provided does not exist" in auth.message
    assert "AwsCredentials" in auth.message
    busy = _translate(
        ClientError(
            {"Error": {"Code": "SlowDown", "Message": "Reduce your rate"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
            "PutObject",
        ),
        "PutObject a",
    )
    assert isinstance(busy, ProviderUnavailable) and busy.retryable


def test_an_unreachable_endpoint_is_provider_unavailable(tmp_path: Path) -> None:
    dead = _bucket(f"http://127.0.0.1:{_free_port()}")
    dead.credentials.aws_client_parameters.config = {"retries": {"max_attempts": 1}, "connect_timeout": 1}
    with pytest.raises(ProviderUnavailable) as info:
        S3Website(bucket=dead).preflight()
    assert SECRET not in info.value.message and info.value.retryable
