"""Tenants, API keys and Block bindings on a real SQLite file: get-or-create tenants, keys stored only as
hashes and revocable by id or prefix, Block bindings per tenant (DESIGN §2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from core.errors import NotFound
from core.models import ApiKey
from core.store import Store, hash_key


# --- tenants ---------------------------------------------------------------------------------------
def test_ensure_tenant_creates_once_and_never_overwrites(store: Store) -> None:
    tenant = store.ensure_tenant("acme", "Acme Ltd")
    assert (tenant.id, tenant.name, tenant.version) == ("acme", "Acme Ltd", 1)
    assert store.ensure_tenant("acme", "another name").name == "Acme Ltd"  # get-or-create, not overwrite
    assert store.ensure_tenant("globex").name == "globex"  # the name defaults to the id


# --- API keys --------------------------------------------------------------------------------------
def test_api_key_resolves_to_its_tenant_until_revoked(store: Store) -> None:
    row, plain = store.create_api_key("acme")
    other_row, other_plain = store.create_api_key("globex")
    assert plain != other_plain
    assert store.tenant_for_key(plain).id == "acme"  # type: ignore[union-attr]
    assert store.tenant_for_key(other_plain).id == "globex"  # type: ignore[union-attr]
    assert store.tenant_for_key(plain + "x") is None
    assert store.tenant_for_key("") is None

    revoked = store.revoke_api_key(row.id)
    assert revoked.revoked_at is not None
    assert store.tenant_for_key(plain) is None
    assert store.tenant_for_key(other_plain).id == "globex"  # type: ignore[union-attr]

    store.revoke_api_key(other_row.prefix)
    assert store.tenant_for_key(other_plain) is None


def test_revoking_an_unknown_key_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.revoke_api_key("pb_nothing")


def test_only_the_hash_of_an_api_key_is_stored(store: Store, tmp_path: Path) -> None:
    row, plain = store.create_api_key("acme")
    assert row.key_hash == hash_key(plain) != plain
    with store.session() as s:
        (stored,) = s.exec(select(ApiKey)).all()
    assert stored.key_hash == hash_key(plain)
    assert plain.startswith(stored.prefix) and len(stored.prefix) < len(plain)

    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("x.db"))
    assert hash_key(plain).encode() in on_disk  # the check below looks at the right bytes
    assert plain.encode() not in on_disk


# --- block bindings --------------------------------------------------------------------------------
def test_block_bindings_are_per_tenant_and_rebinding_replaces(store: Store) -> None:
    store.ensure_tenant("t1")
    store.ensure_tenant("t2")
    store.bind_block("t1", "prod", "pombolt-netlify", "t1-prod")
    store.bind_block("t2", "prod", "pombolt-vercel", "t2-prod")
    rebound = store.bind_block("t1", "prod", "pombolt-netlify", "t1-prod-v2")
    assert (rebound.document_name, rebound.version) == ("t1-prod-v2", 2)
    assert store.find_block("t1", "prod").document_name == "t1-prod-v2"  # type: ignore[union-attr]
    assert store.find_block("t2", "prod").slug == "pombolt-vercel"  # type: ignore[union-attr]
    assert store.find_block("t3", "prod") is None
    assert [b.name for b in store.list_blocks("t1")] == ["prod"]


def test_block_bindings_are_listed_by_name(store: Store) -> None:
    store.ensure_tenant("t1")
    for name in ("staging", "dev", "prod"):
        store.bind_block("t1", name, "pombolt-netlify", f"t1-{name}")
    assert [b.name for b in store.list_blocks("t1")] == ["dev", "prod", "staging"]
    assert store.list_blocks("t2") == []
