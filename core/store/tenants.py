"""Tenants and what they own outside projects: tables ``tenant``, ``apikey`` and ``blockbinding``.

A tenant id follows the rule of :mod:`core.names` (checked when the tenant is created). An API key is stored only
as its SHA-256 (:func:`hash_key`) and a short printed prefix; the plain key is shown once, at creation. A Block
binding records that a tenant owns a Prefect Block document under a name of its own; it is the one source of
truth for which document a tenant's Block name resolves to.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.errors import NotFound
from core.models import ApiKey, BlockBinding, Tenant, build_row, utcnow
from core.names import check_tenant_id
from core.store.engine import StoreEngine

# One indexed query of every API request, built once (its compiled form is cached by SQLAlchemy).
_TENANT_FOR_KEY = (
    select(Tenant)
    .join(ApiKey, col(ApiKey.tenant_id) == col(Tenant.id))
    .where(col(ApiKey.key_hash) == bindparam("key_hash"), col(ApiKey.revoked_at).is_(None))
)


def hash_key(key: str) -> str:
    """SHA-256 hex of an API key (only this is stored)."""
    return hashlib.sha256(key.encode()).hexdigest()


class TenantStore(StoreEngine):
    """Tenants, their API keys and their Block bindings."""

    # --- tenants and keys -------------------------------------------------------------------------
    def ensure_tenant(self, tenant_id: str, name: str | None = None) -> Tenant:
        """Return the tenant, creating it when absent (an existing tenant keeps its name).

        Args:
            tenant_id: The tenant's id; a new one must follow the tenant id rule of :mod:`core.names`.
            name: Its display name when created; default the id.

        Raises:
            ConfigError: When the tenant is new and its id breaks the rule (``Acme``, ``a_b``, ``a.b``); a tenant
                created before the rule existed is returned as it is.
        """
        with self.session() as s:
            tenant = s.get(Tenant, tenant_id)
            if tenant is None:
                check_tenant_id(tenant_id)
                tenant = Tenant(id=tenant_id, name=name or tenant_id)
                s.add(tenant)
                try:
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    tenant = s.get(Tenant, tenant_id)
                    assert tenant is not None
            return tenant

    def create_api_key(self, tenant_id: str) -> tuple[ApiKey, str]:
        """Create a key for a tenant (created when absent).

        Returns:
            The stored row and the plain key, which is returned once and never stored.
        """
        self.ensure_tenant(tenant_id)
        plain = "pb_" + secrets.token_urlsafe(32)
        row = self._insert(ApiKey(tenant_id=tenant_id, key_hash=hash_key(plain), prefix=plain[:10]))
        return row, plain

    def tenant_for_key(self, plain: str) -> Tenant | None:
        """Return the tenant owning an unrevoked key, or None.

        One indexed query (key hash joined to its tenant) on a plain connection per call, read from the
        database every time, so a key revoked by another process (``pombolt keys revoke``) stops working at
        its next request. It runs on every API request, hence Core instead of an ORM session.
        """
        with self.engine.connect() as conn:
            row = conn.execute(_TENANT_FOR_KEY, {"key_hash": hash_key(plain)}).first()
        return None if row is None else build_row(Tenant, **row._mapping)

    def revoke_api_key(self, prefix_or_id: str) -> ApiKey:
        """Revoke a key by id or printed prefix.

        Raises:
            NotFound: When no key has that id or prefix.
        """
        with self.session() as s:
            key = s.exec(select(ApiKey).where((ApiKey.id == prefix_or_id) | (ApiKey.prefix == prefix_or_id))).first()
        if key is None:
            raise NotFound(f"no API key {prefix_or_id!r}; list keys with 'pombolt keys list'")
        return self.update(key, revoked_at=utcnow())

    # --- blocks -------------------------------------------------------------------------------------
    def bind_block(self, tenant_id: str, name: str, slug: str, document_name: str) -> BlockBinding:
        """Record (or replace) that a tenant owns a Block document under ``name``.

        Args:
            tenant_id: The owning tenant.
            name: The tenant's name for the Block (what projects reference).
            slug: The Block type slug.
            document_name: The Block document's name in Prefect.
        """
        row = self.find_block(tenant_id, name)
        if row is None:
            return self._insert(BlockBinding(tenant_id=tenant_id, name=name, slug=slug, document_name=document_name))
        return self.update(row, slug=slug, document_name=document_name)

    def find_block(self, tenant_id: str, name: str) -> BlockBinding | None:
        """Return the tenant's Block binding named ``name``, or None."""
        with self.session() as s:
            return s.exec(
                select(BlockBinding).where(BlockBinding.tenant_id == tenant_id, BlockBinding.name == name)
            ).first()

    def document_shared(self, tenant_id: str, slug: str, document_name: str) -> bool:
        """Whether another tenant has a binding to the same Block document (type ``slug``, ``document_name``).

        Document names derived since tenant namespaces were fixed cannot be shared; one derived by the older
        rule could be (``t-a--b--c`` was both tenant ``a``'s ``b--c`` and tenant ``a--b``'s ``c``).
        """
        with self.session() as s:
            other = s.exec(
                select(BlockBinding.id).where(
                    BlockBinding.slug == slug,
                    BlockBinding.document_name == document_name,
                    BlockBinding.tenant_id != tenant_id,
                )
            ).first()
        return other is not None

    def list_blocks(self, tenant_id: str) -> Sequence[BlockBinding]:
        """All Block bindings of a tenant, by name."""
        with self.session() as s:
            return s.exec(
                select(BlockBinding).where(BlockBinding.tenant_id == tenant_id).order_by(BlockBinding.name)
            ).all()
