"""Phase store: the checked files are written once, by SHA-256, under their manifest (the snapshot)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.models import Run
from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from tasks._phase import Reuse
from tasks.generate import generate
from tasks.snapshot import snapshot_kept, store_snapshot
from tests.unit.tasks.conftest import TENANT


def test_the_snapshot_is_written_once_and_has_the_id_generate_announced(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    gen = generate.fn(run.id, TENANT, "sha", "offline", "fp")
    first = store_snapshot.fn(run.id, TENANT, gen.generation_id)
    again = store_snapshot.fn(run.id, TENANT, gen.generation_id)
    assert first.snapshot_id == again.snapshot_id == gen.snapshot_id
    assert (first.blobs_written, again.blobs_written) == (gen.file_count, 0)


def test_a_cached_snapshot_counts_only_while_every_blob_is_in_storage(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    ref = store_snapshot.fn(run.id, TENANT, generate.fn(run.id, TENANT, "sha", "offline", "fp").generation_id)
    snapshots = get_snapshots(TENANT)
    reuse = Reuse(snapshots=snapshots, project=get_store().get_project(run.project_id))
    assert snapshot_kept(ref, reuse)
    entry = snapshots.manifest(ref.snapshot_id).files[0]
    (Path(get_settings().storage_dir) / snapshots.blob_key(entry.sha256)).unlink()
    assert not snapshot_kept(ref, reuse)
