"""Generations in storage: what the generate and check phases paid for, kept by content hash.

Private to the generate, plan and check phases (and the store phase, which reads the checked one).
"""

from __future__ import annotations

import hashlib

from core.files import GeneratedFile
from core.snapshots import Manifest, SnapshotStore
from tasks._phase import Reuse
from tasks.models import GenerationRecord, GenerationRef

KIND = "generations"


def save_generation(snapshots: SnapshotStore, record: GenerationRecord) -> GenerationRef:
    """Store a generation record under its content hash and return a reference to it."""
    body = record.model_dump_json().encode()
    gid = hashlib.sha256(body).hexdigest()
    snapshots.put_record(KIND, gid, record)
    manifest = Manifest.of(record.files)
    return GenerationRef(
        generation_id=gid,
        snapshot_id=manifest.snapshot_id,
        file_count=len(record.files),
        total_bytes=manifest.total_bytes,
        usage=record.usage,
        label=record.label,
        repair_rounds=record.repair_rounds,
    )


def load_generation(snapshots: SnapshotStore, generation_id: str) -> GenerationRecord:
    """Read a stored generation record.

    Raises:
        BlobMissing: When the record is gone from storage.
    """
    record: GenerationRecord = snapshots.get_record(KIND, generation_id, GenerationRecord)
    return record


def generation_kept(ref: GenerationRef, reuse: Reuse) -> bool:
    """Reuse test of the generate and check phases: a cached generation counts only while its record exists."""
    return reuse.snapshots.exists_key(reuse.snapshots.record_key(KIND, ref.generation_id))


def merge_change(base: list[GeneratedFile], changed: list[GeneratedFile], deleted: list[str]) -> list[GeneratedFile]:
    """Apply a change generation (changed files, deleted paths) on top of a base tree."""
    tree = {f.path: f for f in base}
    for path in deleted:
        tree.pop(path, None)
    tree.update({f.path: f for f in changed})
    return list(tree.values())
