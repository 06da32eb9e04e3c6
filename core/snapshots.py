"""Content-addressed snapshots on a storage Block (DESIGN §2, §3).

Layout inside the storage Block (Prefect's ``LocalFileSystem`` or prefect-aws's ``S3Bucket``)::

    tenants/<tenant_id>/blobs/<sha256[:2]>/<sha256>     file bytes, stored once per tenant
    tenants/<tenant_id>/snapshots/<snapshot_id>.json    manifest: path -> sha256, size, mode
    tenants/<tenant_id>/records/<kind>/<id>.json        small JSON records (e.g. generations)

A manifest is canonical JSON; its SHA-256 is the snapshot id, so equal trees have equal ids and
writing an existing snapshot writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import BlobMissing, SnapshotCorrupt, StorageError
from core.files import FileMode, GeneratedFile, check_path

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class FileSystemBlock(Protocol):
    """What we use of a Prefect ``WritableFileSystem`` (LocalFileSystem, S3Bucket)."""

    def read_path(self, path: str) -> bytes: ...

    def write_path(self, path: str, content: bytes) -> Any: ...


class ManifestEntry(BaseModel):
    """One file of a snapshot."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    size: int
    mode: FileMode = "100644"


class Manifest(BaseModel):
    """The full file list of a snapshot."""

    model_config = ConfigDict(frozen=True)

    files: tuple[ManifestEntry, ...] = Field(default_factory=tuple)

    def canonical(self) -> bytes:
        """Canonical JSON bytes (sorted, compact): the input of the snapshot id."""
        body = {"files": [e.model_dump() for e in sorted(self.files, key=lambda e: e.path)]}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @property
    def snapshot_id(self) -> str:
        """SHA-256 of the canonical manifest."""
        return hashlib.sha256(self.canonical()).hexdigest()

    @property
    def total_bytes(self) -> int:
        """Sum of file sizes."""
        return sum(e.size for e in self.files)

    def by_path(self) -> dict[str, ManifestEntry]:
        """Entries keyed by path."""
        return {e.path: e for e in self.files}

    @classmethod
    def of(cls, files: Iterable[GeneratedFile]) -> Manifest:
        """The manifest of a set of files."""
        entries = sorted(
            (ManifestEntry(path=f.path, sha256=f.sha256, size=f.size, mode=f.mode) for f in files),
            key=lambda e: e.path,
        )
        return cls(files=tuple(entries))


class SnapshotRef(BaseModel):
    """What tasks pass around instead of file bytes."""

    model_config = ConfigDict(frozen=True)

    snapshot_id: str
    file_count: int
    total_bytes: int
    blobs_written: int = 0


def _check_id(value: str, what: str) -> str:
    if not _HEX64.fullmatch(value):
        raise SnapshotCorrupt(f"{what} {value!r} is not a SHA-256 hex id")
    return value


class SnapshotStore:
    """Snapshots of one tenant on a storage Block.

    Args:
        fs: The storage Block (anything with ``read_path``/``write_path``).
        tenant_id: Owner; everything lives under ``tenants/<tenant_id>/``.
    """

    def __init__(self, fs: FileSystemBlock, tenant_id: str) -> None:
        if not _TENANT.fullmatch(tenant_id):
            raise StorageError(f"tenant id {tenant_id!r} is not a safe storage prefix", retryable=False)
        self.fs = fs
        self.tenant_id = tenant_id
        self.prefix = f"tenants/{tenant_id}"

    # --- raw access, with our errors ---------------------------------------------------------------
    def _read(self, key: str) -> bytes | None:
        try:
            data = self.fs.read_path(key)
        except (FileNotFoundError, ValueError):
            return None
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise StorageError(f"cannot read {key} from storage: {type(exc).__name__}") from exc
        return bytes(data)

    def _write(self, key: str, content: bytes) -> None:
        try:
            self.fs.write_path(key, content)
        except Exception as exc:
            raise StorageError(f"cannot write {key} to storage: {type(exc).__name__}: {exc}") from exc

    def exists_key(self, key: str) -> bool:
        """Whether a key exists (reads it; storage Blocks have no cheaper portable probe)."""
        return self._read(key) is not None

    # --- keys ---------------------------------------------------------------------------------------
    def blob_key(self, sha: str) -> str:
        """Storage key of a blob."""
        return f"{self.prefix}/blobs/{sha[:2]}/{sha}"

    def manifest_key(self, snapshot_id: str) -> str:
        """Storage key of a manifest."""
        return f"{self.prefix}/snapshots/{snapshot_id}.json"

    def record_key(self, kind: str, record_id: str) -> str:
        """Storage key of a JSON record."""
        return f"{self.prefix}/records/{kind}/{record_id}.json"

    # --- snapshots ----------------------------------------------------------------------------------
    def put(self, files: Sequence[GeneratedFile]) -> SnapshotRef:
        """Store files and their manifest; existing blobs and manifests are not written again.

        Returns:
            The snapshot reference, with how many blobs were written.
        """
        manifest = Manifest.of(files)
        sid = manifest.snapshot_id
        written = 0
        seen: set[str] = set()
        for f in files:  # a blob lost from storage is written again even when the manifest exists
            sha = f.sha256
            if sha in seen:
                continue
            seen.add(sha)
            if self._read(self.blob_key(sha)) is None:
                self._write(self.blob_key(sha), f.content)
                written += 1
        if self._read(self.manifest_key(sid)) is None:
            self._write(self.manifest_key(sid), manifest.canonical())
        return SnapshotRef(
            snapshot_id=sid, file_count=len(manifest.files), total_bytes=manifest.total_bytes, blobs_written=written
        )

    def exists(self, snapshot_id: str) -> bool:
        """Whether the manifest and every blob of a snapshot are present."""
        try:
            manifest = self.manifest(snapshot_id)
        except (SnapshotCorrupt, BlobMissing):
            return False
        return all(self._read(self.blob_key(e.sha256)) is not None for e in manifest.files)

    def manifest(self, snapshot_id: str) -> Manifest:
        """Read and verify a manifest.

        Raises:
            BlobMissing: When the manifest is absent.
            SnapshotCorrupt: When it does not parse or does not hash to its id.
        """
        _check_id(snapshot_id, "snapshot id")
        raw = self._read(self.manifest_key(snapshot_id))
        if raw is None:
            raise BlobMissing(
                f"snapshot {snapshot_id[:12]} has no manifest in storage; run the pipeline again to rebuild it"
            )
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as exc:
            raise SnapshotCorrupt(
                f"manifest of snapshot {snapshot_id[:12]} is corrupt ({exc.error_count()} errors); "
                "delete it and run the pipeline again"
            ) from exc
        if manifest.snapshot_id != snapshot_id:
            raise SnapshotCorrupt(
                f"manifest of snapshot {snapshot_id[:12]} does not match its id; delete it and run again"
            )
        return manifest

    def read_blob(self, sha: str, *, path: str = "") -> bytes:
        """Read one blob and verify its hash.

        Raises:
            BlobMissing: When absent.
            SnapshotCorrupt: When its bytes do not hash to ``sha``.
        """
        _check_id(sha, "blob id")
        data = self._read(self.blob_key(sha))
        where = f" (file {path})" if path else ""
        if data is None:
            raise BlobMissing(f"blob {sha[:12]}{where} is missing from storage; run the pipeline again")
        if hashlib.sha256(data).hexdigest() != sha:
            raise SnapshotCorrupt(f"blob {sha[:12]}{where} is corrupt in storage; delete it and run again")
        return data

    def files(self, snapshot_id: str) -> list[GeneratedFile]:
        """All files of a snapshot, byte-exact."""
        return [
            GeneratedFile(path=e.path, content=self.read_blob(e.sha256, path=e.path), mode=e.mode)
            for e in self.manifest(snapshot_id).files
        ]

    def materialize(self, snapshot_id: str, dest: Path) -> Manifest:
        """Write a snapshot's files into an empty folder ``dest`` (created)."""
        manifest = self.manifest(snapshot_id)
        dest.mkdir(parents=True, exist_ok=True)
        for e in manifest.files:
            check_path(e.path, allow_workflows=True)  # never write outside dest, whatever the manifest says
            target = dest / e.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read_blob(e.sha256, path=e.path))
            if e.mode == "100755":
                target.chmod(0o755)
        return manifest

    # --- records ------------------------------------------------------------------------------------
    def put_record(self, kind: str, record_id: str, payload: BaseModel) -> None:
        """Store a small JSON record (e.g. a generation) under a content-derived id."""
        self._write(self.record_key(kind, record_id), payload.model_dump_json().encode())

    def get_record(self, kind: str, record_id: str, model: type[Any]) -> Any:
        """Read a JSON record back into ``model``.

        Raises:
            BlobMissing: When absent.
            SnapshotCorrupt: When it does not parse.
        """
        raw = self._read(self.record_key(kind, record_id))
        if raw is None:
            raise BlobMissing(f"{kind} record {record_id[:12]} is missing from storage; run the pipeline again")
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise SnapshotCorrupt(f"{kind} record {record_id[:12]} is corrupt; delete it and run again") from exc


def _is_not_found(exc: Exception) -> bool:
    """Tell a 'no such key' from a real failure (botocore and fsspec spell it differently)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        return code in ("NoSuchKey", "404", "NotFound")
    return "NoSuchKey" in type(exc).__name__ or "Not Found" in str(exc)
