"""Content-addressed snapshots on Prefect's LocalFileSystem (unsaved Block, no server).

Cases that need no other backend live here; the ones that must hold on every storage Block (dedup,
byte-exactness, exists, tenant isolation) run over LocalFileSystem *and* S3 in
tests/integration/core/test_snapshots_s3.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem
from pydantic import BaseModel

from core.errors import BlobMissing, SnapshotCorrupt, StorageError
from core.files import GeneratedFile
from core.snapshots import Manifest, SnapshotStore

FILES = [
    GeneratedFile(path="index.html", content=b"<!doctype html>\r\n<h1>hi</h1>\n"),
    GeneratedFile(path="assets/app.js", content=b"console.log(1)\n"),
    GeneratedFile(path="bin/serve.sh", content=b"#!/bin/sh\nexec true\n", mode="100755"),
    GeneratedFile(path="img/logo.bin", content=bytes(range(256)) + b"\x00\xff\r\n"),
]


class CountingFS:
    """Wraps the storage Block (the outside world) and records every read and write."""

    def __init__(self, inner: LocalFileSystem) -> None:
        self.inner = inner
        self.reads: list[str] = []
        self.writes: list[str] = []

    def read_path(self, path: str) -> bytes:
        self.reads.append(path)
        return self.inner.read_path(path)

    def write_path(self, path: str, content: bytes) -> str:
        self.writes.append(path)
        return self.inner.write_path(path, content)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def fs(root: Path) -> CountingFS:
    return CountingFS(LocalFileSystem(basepath=str(root)))


@pytest.fixture
def snaps(fs: CountingFS) -> SnapshotStore:
    return SnapshotStore(fs, "acme")


def expected_id(files: list[GeneratedFile]) -> str:
    """The snapshot id as DESIGN §3 defines it, computed without core.snapshots."""
    entries = [
        {"path": f.path, "sha256": hashlib.sha256(f.content).hexdigest(), "size": len(f.content),
         "mode": f.mode}
        for f in sorted(files, key=lambda f: f.path)
    ]
    canonical = json.dumps({"files": entries}, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


# --- identity --------------------------------------------------------------------------------------
def test_snapshot_id_is_the_sha256_of_the_canonical_manifest(snaps: SnapshotStore, root: Path) -> None:
    ref = snaps.put(FILES)
    assert ref.snapshot_id == expected_id(FILES)
    stored = (root / "tenants" / "acme" / "snapshots" / f"{ref.snapshot_id}.json").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == ref.snapshot_id
    assert (ref.file_count, ref.total_bytes) == (4, sum(f.size for f in FILES))


def test_the_same_files_in_another_order_give_the_same_id(snaps: SnapshotStore) -> None:
    assert snaps.put(FILES).snapshot_id == snaps.put(list(reversed(FILES))).snapshot_id
    assert Manifest.of(FILES).canonical() == Manifest.of(FILES[::-1]).canonical()


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.model_copy(update={"content": f.content + b" "}),
        lambda f: f.model_copy(update={"path": "other.html"}),
        lambda f: f.model_copy(update={"mode": "100755"}),
    ],
    ids=["content", "path", "mode"],
)
def test_any_change_gives_another_id(snaps: SnapshotStore, change) -> None:
    changed = [change(FILES[0]), *FILES[1:]]
    assert snaps.put(changed).snapshot_id != snaps.put(FILES).snapshot_id


def test_an_empty_snapshot_is_valid(snaps: SnapshotStore) -> None:
    ref = snaps.put([])
    assert ref.snapshot_id == expected_id([])
    assert snaps.exists(ref.snapshot_id)
    assert snaps.files(ref.snapshot_id) == []


# --- writing once ----------------------------------------------------------------------------------
def test_a_second_put_writes_no_blob_and_leaves_the_manifest_alone(
    snaps: SnapshotStore, fs: CountingFS, root: Path
) -> None:
    first = snaps.put(FILES)
    assert first.blobs_written == 4
    assert len(fs.writes) == 5  # four blobs, then the manifest

    manifest_file = root / "tenants" / "acme" / "snapshots" / f"{first.snapshot_id}.json"
    os.utime(manifest_file, ns=(1_000_000_000, 1_000_000_000))
    fs.writes.clear()

    second = snaps.put(list(reversed(FILES)))
    assert second == first.model_copy(update={"blobs_written": 0})
    assert fs.writes == []
    assert manifest_file.stat().st_mtime_ns == 1_000_000_000


def test_the_manifest_is_written_after_its_blobs(snaps: SnapshotStore, fs: CountingFS) -> None:
    ref = snaps.put(FILES)
    assert fs.writes[-1] == snaps.manifest_key(ref.snapshot_id)
    assert all("/blobs/" in key for key in fs.writes[:-1])


def test_a_new_snapshot_writes_only_the_blobs_it_lacks(snaps: SnapshotStore) -> None:
    snaps.put(FILES)
    changed = [FILES[0].model_copy(update={"content": b"new"}), *FILES[1:]]
    assert snaps.put(changed).blobs_written == 1


# --- reading back ----------------------------------------------------------------------------------
def test_files_come_back_byte_exact_with_their_modes(snaps: SnapshotStore) -> None:
    ref = snaps.put(FILES)
    back = snaps.files(ref.snapshot_id)
    assert back == sorted(FILES, key=lambda f: f.path)
    assert {f.path: f.mode for f in back}["bin/serve.sh"] == "100755"


def test_materialize_writes_the_exact_files(snaps: SnapshotStore, tmp_path: Path) -> None:
    ref = snaps.put(FILES)
    dest = tmp_path / "out" / "site"
    manifest = snaps.materialize(ref.snapshot_id, dest)

    assert manifest.snapshot_id == ref.snapshot_id
    written = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file()}
    assert set(written) == {f.path for f in FILES}
    for f in FILES:
        assert written[f.path].read_bytes() == f.content
        executable = bool(written[f.path].stat().st_mode & stat.S_IXUSR)
        assert executable is (f.mode == "100755"), f.path


def test_materialize_stops_on_a_missing_blob(snaps: SnapshotStore, root: Path, tmp_path: Path) -> None:
    ref = snaps.put(FILES)
    (root / snaps.blob_key(FILES[2].sha256)).unlink()
    with pytest.raises(BlobMissing):
        snaps.materialize(ref.snapshot_id, tmp_path / "out")


# --- damage ----------------------------------------------------------------------------------------
def test_an_unparsable_manifest_is_corrupt(snaps: SnapshotStore, fs: CountingFS) -> None:
    ref = snaps.put(FILES)
    fs.inner.write_path(snaps.manifest_key(ref.snapshot_id), b'{"files": [ {"path": ')
    with pytest.raises(SnapshotCorrupt) as info:
        snaps.manifest(ref.snapshot_id)
    assert info.value.code == "storage.snapshot_corrupt"
    assert info.value.retryable is False
    assert snaps.exists(ref.snapshot_id) is False


def test_a_manifest_that_does_not_hash_to_its_id_is_corrupt(snaps: SnapshotStore, fs: CountingFS) -> None:
    ref = snaps.put(FILES)
    other = Manifest.of(FILES[:1]).canonical()  # well-formed, but another snapshot's manifest
    fs.inner.write_path(snaps.manifest_key(ref.snapshot_id), other)
    with pytest.raises(SnapshotCorrupt, match="does not match"):
        snaps.files(ref.snapshot_id)


def test_a_missing_manifest_is_blob_missing(snaps: SnapshotStore) -> None:
    with pytest.raises(BlobMissing) as info:
        snaps.manifest("ab" * 32)
    assert info.value.code == "storage.blob_missing"
    assert snaps.exists("ab" * 32) is False


def test_a_missing_blob_is_blob_missing_naming_the_file(snaps: SnapshotStore, root: Path) -> None:
    ref = snaps.put(FILES)
    (root / snaps.blob_key(FILES[1].sha256)).unlink()
    with pytest.raises(BlobMissing) as info:
        snaps.files(ref.snapshot_id)
    assert info.value.code == "storage.blob_missing"
    assert "assets/app.js" in str(info.value)


def test_a_tampered_blob_is_corrupt(snaps: SnapshotStore, fs: CountingFS) -> None:
    ref = snaps.put(FILES)
    fs.inner.write_path(snaps.blob_key(FILES[0].sha256), b"<script>evil()</script>")
    with pytest.raises(SnapshotCorrupt) as info:
        snaps.files(ref.snapshot_id)
    assert "index.html" in str(info.value)
    with pytest.raises(SnapshotCorrupt):
        snaps.read_blob(FILES[0].sha256)


@pytest.mark.parametrize(
    "bad_id", ["", "../../etc/passwd", "AB" * 32, "ab" * 31, "ab" * 33, "g" * 64, "ab" * 32 + "\n"]
)
def test_ids_that_are_not_sha256_hex_are_refused_before_any_read(
    snaps: SnapshotStore, fs: CountingFS, bad_id: str
) -> None:
    with pytest.raises(SnapshotCorrupt):
        snaps.manifest(bad_id)
    with pytest.raises(SnapshotCorrupt):
        snaps.read_blob(bad_id)
    assert fs.reads == []


# --- tenants ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("tenant", ["", "../other", "a/b", "a b", "a.b", "x" * 65, "t\x00", "ü", "acme\n"])
def test_unsafe_tenant_ids_are_refused(fs: CountingFS, tenant: str) -> None:
    with pytest.raises(StorageError) as info:
        SnapshotStore(fs, tenant)
    assert info.value.retryable is False
    assert type(info.value) is StorageError


@pytest.mark.parametrize("tenant", ["local", "acme-2", "T_1", "x" * 64])
def test_safe_tenant_ids_are_accepted(fs: CountingFS, tenant: str) -> None:
    assert SnapshotStore(fs, tenant).prefix == f"tenants/{tenant}"


# --- records ---------------------------------------------------------------------------------------
class Generation(BaseModel):
    snapshot_id: str
    prompt_tokens: int


def test_records_round_trip_and_report_damage(snaps: SnapshotStore, fs: CountingFS) -> None:
    snaps.put_record("generations", "g1", Generation(snapshot_id="ab" * 32, prompt_tokens=42))
    assert snaps.get_record("generations", "g1", Generation) == Generation(snapshot_id="ab" * 32,
                                                                           prompt_tokens=42)
    assert fs.writes == ["tenants/acme/records/generations/g1.json"]
    with pytest.raises(BlobMissing):
        snaps.get_record("generations", "g2", Generation)
    fs.inner.write_path(snaps.record_key("generations", "g1"), b"not json")
    with pytest.raises(SnapshotCorrupt):
        snaps.get_record("generations", "g1", Generation)
