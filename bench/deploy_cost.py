"""Files and bytes each deployment target uploads: first deploy, unchanged redeploy, one changed file.

Runs offline against the same stand-ins the tests use: the stateful fake Netlify (tests/fakes/netlify.py)
and moto's S3 server, both on 127.0.0.1. Usage: ``.venv/bin/python bench/deploy_cost.py``.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from moto.server import ThreadedMotoServer
from prefect.filesystems import LocalFileSystem
from prefect_aws import AwsCredentials, S3Bucket
from pydantic import SecretStr

from blocks.targets.base import DeploymentTarget, DeployRequest, DeployResult, SiteState
from blocks.targets.netlify import NetlifySite
from blocks.targets.s3_website import S3Website
from core.snapshots import SnapshotStore
from tests.contracts import samples
from tests.fakes.netlify import FakeNetlify


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def netlify() -> Iterator[DeploymentTarget]:
    with FakeNetlify(tokens={"bench-token-0123456789"}) as fake:
        yield NetlifySite(
            token=SecretStr("bench-token-0123456789"), api_url=fake.api_url, poll_interval=0.02, poll_max_interval=0.1
        )


@contextmanager
def s3() -> Iterator[DeploymentTarget]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
        ).create_bucket(Bucket="bench-sites")
        creds = AwsCredentials(
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
            aws_client_parameters={"endpoint_url": url},
        )
        yield S3Website(bucket=S3Bucket(bucket_name="bench-sites", credentials=creds), public_read_acl=True)
    finally:
        server.stop()


def measure(name: str, make: Callable[[], object], snapshots: SnapshotStore) -> None:
    with make() as target:  # type: ignore[attr-defined]
        project_id, state = uuid.uuid4().hex, SiteState()
        steps = [
            ("first deploy", samples.small_site()),
            ("unchanged redeploy", samples.small_site()),
            ("one file changed", samples.changed(samples.small_site(), {"app.js": "console.log('v2');\n"})),
        ]
        for label, files in steps:
            sid = snapshots.put(files).snapshot_id
            request = DeployRequest(
                tenant_id="bench",
                project_id=project_id,
                project_name="Bench Site",
                run_id=uuid.uuid4().hex,
                site_snapshot_id=sid,
            )
            started = time.perf_counter()
            result: DeployResult = target.deploy(snapshots, request, state)
            state = result.state
            print(
                f"{name:<8} {label:<20} files={result.files_uploaded:<3} bytes={result.bytes_uploaded:<6} "
                f"deleted={result.files_deleted} {time.perf_counter() - started:.2f}s"
            )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snapshots = SnapshotStore(LocalFileSystem(basepath=tmp), "bench")
        total = sum(f.size for f in samples.small_site())
        print(f"site: {len(samples.small_site())} files, {total} bytes")
        measure("netlify", netlify, snapshots)
        measure("s3", s3, snapshots)


if __name__ == "__main__":
    main()
