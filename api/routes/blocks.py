"""Tenant Blocks: ``PUT /api/blocks/{slug}/{name}`` saves one the tenant owns; ``GET /api/blocks`` lists them.

Secrets are write-only: a listing shows each secret field only as ``set`` or ``unset``. Fields that name a
resource on the worker (a ``root`` folder, a local server, a ``file://`` remote) are operator-only (DESIGN §6):
a tenant's save that sets one is refused with a 422 naming the field; only the local CLI tenant
(``POMBOLT_DEFAULT_TENANT``) may set them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Body, HTTPException, status
from fastapi.exceptions import RequestValidationError
from prefect.blocks.core import Block
from pydantic import SecretBytes, SecretStr, ValidationError

from api.deps import CurrentTenant, StateDep
from api.schemas import BlockOut
from blocks.catalog import check_name, load_bound, operator_settings, save_block
from core.errors import ConfigError, UnknownBlock

router = APIRouter(prefix="/api/blocks", tags=["blocks"])


@lru_cache(maxsize=1)
def block_types() -> dict[str, type[Block]]:
    """Slug → Pom-Bolt Block class, for every class importable in this install."""
    from blocks.catalog import block_classes

    return {cls.get_block_type_slug(): cls for cls in block_classes()}


def _secret_fields(cls: type[Block]) -> list[str]:
    return [
        name
        for name, info in cls.model_fields.items()
        if any(t in str(info.annotation) for t in ("SecretStr", "SecretBytes", "SecretDict"))
    ]


def _public(block: Block) -> BlockOut:
    cls = type(block)
    secrets = _secret_fields(cls)
    fields: dict[str, Any] = {}
    for name in cls.model_fields:
        if name in secrets or name.startswith("_"):
            continue
        value = getattr(block, name)
        if isinstance(value, SecretStr | SecretBytes):
            secrets.append(name)
            continue
        fields[name] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    return BlockOut(
        name="",
        slug=cls.get_block_type_slug(),
        fields=fields,
        secrets={name: "set" if getattr(block, name, None) else "unset" for name in secrets},
    )


def _invalid(loc: tuple[str, ...], message: str) -> dict[str, object]:
    return {"loc": loc, "msg": message, "type": "value_error"}


@router.put("/{slug}/{name}", response_model=BlockOut)
def put_block(
    slug: str, name: str, tenant: CurrentTenant, state: StateDep, body: dict[str, Any] = Body(...)
) -> BlockOut:
    """Create or replace the tenant's Block ``name`` of type ``slug``; the body is the Block's fields."""
    cls = block_types().get(slug)
    if cls is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no Block type {slug!r}; use one of: {', '.join(sorted(block_types()))}"
        )
    # each refusal below is a field-level 422 like FastAPI's own (answered by api.errors, never echoing the input)
    try:
        check_name(name)
    except ConfigError as exc:
        raise RequestValidationError([_invalid(("path", "name"), exc.message)]) from exc
    try:
        json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        message = "the body holds a lone surrogate escape or a non-finite number; send UTF-8 JSON with finite numbers"
        raise RequestValidationError([_invalid(("body",), message)]) from None
    try:
        block = cls.model_validate(body)
    except ValidationError as exc:  # it may hold a secret: not chained, so no traceback can show it either
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    refused = operator_settings(block) if tenant.id != state.settings.default_tenant else {}
    if refused:
        raise RequestValidationError([_invalid(("body", field), why) for field, why in sorted(refused.items())])
    try:
        save_block(state.store, tenant.id, name, block)
    except ConfigError as exc:
        raise RequestValidationError([_invalid(("path", "name"), exc.message)]) from None
    out = _public(block)
    out.name = name
    return out


@router.get("", response_model=list[BlockOut])
def list_blocks(tenant: CurrentTenant, state: StateDep) -> list[BlockOut]:
    """The tenant's saved Blocks (secrets shown only as set/unset)."""
    result = []
    for binding in state.store.list_blocks(tenant.id):
        try:
            block = load_bound(state.store, binding)
        except UnknownBlock:
            continue  # its document is gone or shared with another tenant: it cannot be used either
        out = _public(block)
        out.name = binding.name
        result.append(out)
    return result
