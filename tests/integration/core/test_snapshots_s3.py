"""Snapshot guarantees that must hold on every storage Block: Prefect's LocalFileSystem and prefect-aws's
S3Bucket talking to a real S3 API (moto's server on 127.0.0.1, started by this module)."""

from __future__ import annotations

import re
import socket
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from prefect.filesystems import LocalFileSystem
from prefect_aws import AwsCredentials, S3Bucket

from core.errors import BlobMissing, StorageError
from core.files import GeneratedFile
from core.snapshots import SnapshotStore

pytestmark = pytest.mark.integration

BUCKET = "pombolt-test"

BINARY = bytes(range(256)) * 64 + b"\x00\x00\xff\xfe\r\n\r\n\n\r"
FILES = [
    GeneratedFile(path="index.html", content=b"<!doctype html>\r\n<p>caf\xc3\xa9</p>\r\n"),
    GeneratedFile(path="a/copy-1.txt", content=b"same bytes\n"),
    GeneratedFile(path="b/copy-2.txt", content=b"same bytes\n"),
    GeneratedFile(path="data/blob.bin", content=BINARY),
    GeneratedFile(path="empty", content=b""),
    GeneratedFile(path="run.sh", content=b"#!/bin/sh\n", mode="100755"),
]
UNIQUE_CONTENTS = len({f.content for f in FILES})


# --- the outside world ---------------------------------------------------------------------------------
class CountingFS:
    """Wraps a storage Block and records every write that reaches it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[str] = []

    def read_path(self, path: str) -> bytes:
        return self.inner.read_path(path)

    def write_path(self, path: str, content: bytes) -> Any:
        self.writes.append(path)
        return self.inner.write_path(path, content)


@dataclass
class Backend:
    """A storage Block plus direct access to what it stores (to list, delete and damage keys)."""

    name: str
    fs: CountingFS
    keys: Callable[[], set[str]]
    delete: Callable[[str], None]
    extra: dict[str, Any] = field(default_factory=dict)


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


def _s3_client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _s3_bucket(url: str, bucket: str = BUCKET, **client_params: Any) -> S3Bucket:
    return S3Bucket(
        bucket_name=bucket,
        credentials=AwsCredentials(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            aws_client_parameters={"endpoint_url": url, **client_params},
        ),
    )


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def s3(moto_url: str, aws_env: None) -> Any:
    """A client on an empty bucket (moto is reset before every test)."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=5)
    client = _s3_client(moto_url)
    client.create_bucket(Bucket=BUCKET)
    return client


def _local_backend(root: Path) -> Backend:
    def keys() -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    return Backend("local", CountingFS(LocalFileSystem(basepath=str(root))), keys,
                   lambda key: (root / key).unlink())


def _s3_backend(client: Any, url: str) -> Backend:
    def keys() -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}

    return Backend("s3", CountingFS(_s3_bucket(url)), keys,
                   lambda key: client.delete_object(Bucket=BUCKET, Key=key), {"url": url})


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path / "storage")
    client = request.getfixturevalue("s3")
    return _s3_backend(client, request.getfixturevalue("moto_url"))


# --- the contract, on every backend ----------------------------------------------------------------------
def test_files_round_trip_byte_exact_with_modes(backend: Backend) -> None:
    snaps = SnapshotStore(backend.fs, "acme")
    ref = snaps.put(FILES)
    back = {f.path: f for f in SnapshotStore(backend.fs.inner, "acme").files(ref.snapshot_id)}
    assert set(back) == {f.path for f in FILES}
    for f in FILES:
        assert back[f.path].content == f.content, f.path
        assert back[f.path].mode == f.mode, f.path


def test_identical_bytes_are_stored_once(backend: Backend) -> None:
    snaps = SnapshotStore(backend.fs, "acme")
    ref = snaps.put(FILES)
    assert ref.blobs_written == UNIQUE_CONTENTS == len(FILES) - 1
    blobs = {k for k in backend.keys() if "/blobs/" in k}
    assert blobs == {snaps.blob_key(f.sha256) for f in FILES}
    assert len(blobs) == UNIQUE_CONTENTS


def test_a_second_put_writes_nothing(backend: Backend) -> None:
    snaps = SnapshotStore(backend.fs, "acme")
    first = snaps.put(FILES)
    keys_after_first = backend.keys()
    backend.fs.writes.clear()

    second = snaps.put(list(reversed(FILES)))
    assert second.snapshot_id == first.snapshot_id
    assert second.blobs_written == 0
    assert backend.fs.writes == []
    assert backend.keys() == keys_after_first


def test_another_snapshot_shares_blobs_it_already_has(backend: Backend) -> None:
    snaps = SnapshotStore(backend.fs, "acme")
    snaps.put(FILES)
    extended = [*FILES, GeneratedFile(path="new.txt", content=b"only this is new")]
    assert snaps.put(extended).blobs_written == 1


def test_exists_until_a_blob_is_deleted(backend: Backend) -> None:
    snaps = SnapshotStore(backend.fs, "acme")
    ref = snaps.put(FILES)
    assert snaps.exists(ref.snapshot_id) is True

    backend.delete(snaps.blob_key(FILES[3].sha256))
    assert snaps.exists(ref.snapshot_id) is False
    with pytest.raises(BlobMissing, match=re.escape("data/blob.bin")):
        snaps.files(ref.snapshot_id)


def test_an_absent_key_reads_as_absent_not_as_a_failure(backend: Backend) -> None:
    snaps = SnapshotStore(backend.fs, "acme")
    assert snaps.exists("0" * 64) is False
    assert snaps.exists_key("tenants/acme/nothing/here") is False
    with pytest.raises(BlobMissing):
        snaps.manifest("0" * 64)
    with pytest.raises(BlobMissing):
        snaps.read_blob("1" * 64)


def test_tenants_are_isolated(backend: Backend) -> None:
    acme = SnapshotStore(backend.fs, "acme")
    globex = SnapshotStore(backend.fs, "globex")
    ref = acme.put(FILES)

    assert backend.keys()
    assert all(k.startswith("tenants/acme/") for k in backend.keys())
    assert globex.exists(ref.snapshot_id) is False
    with pytest.raises(BlobMissing):
        globex.files(ref.snapshot_id)
    with pytest.raises(BlobMissing):
        globex.read_blob(FILES[0].sha256)

    # dedup is per tenant: the same files cost globex its own blobs, under its own prefix
    again = globex.put(FILES)
    assert again.snapshot_id == ref.snapshot_id
    assert again.blobs_written == UNIQUE_CONTENTS
    assert {k for k in backend.keys() if k.startswith("tenants/globex/")}
    assert all(k.startswith(("tenants/acme/", "tenants/globex/")) for k in backend.keys())


# --- S3 only: failures are failures, not "absent" -----------------------------------------------------
def test_unreachable_s3_is_a_storage_error_not_an_absent_key(aws_env: None) -> None:
    dead = _s3_bucket(f"http://127.0.0.1:{_free_port()}",
                      config={"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 1})
    snaps = SnapshotStore(dead, "acme")
    with pytest.raises(StorageError) as info:
        snaps.exists("0" * 64)
    assert type(info.value) is StorageError
    assert info.value.retryable is True
    with pytest.raises(StorageError):
        snaps.put(FILES[:1])


def test_writing_to_a_missing_bucket_is_a_storage_error(s3: Any, moto_url: str) -> None:
    snaps = SnapshotStore(_s3_bucket(moto_url, bucket="no-such-bucket"), "acme")
    with pytest.raises(StorageError) as info:
        snaps.put(FILES[:1])
    assert type(info.value) is StorageError
    assert "tenants/acme/blobs/" in str(info.value)
