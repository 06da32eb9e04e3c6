"""``pombolt keys create`` and ``keys revoke``: tenant API keys (only their hashes are stored)."""

from __future__ import annotations

from typing import Annotated

import typer

from core.errors import PomBoltError
from ops.cli._common import bad_input, boot, err, out


def create(
    tenant: Annotated[
        str, typer.Option(help="Tenant id (created when new): 1-63 lowercase letters, digits and dashes.")
    ],
) -> None:
    """Create an API key for a tenant and print it once (only its hash is stored)."""
    store = boot()
    try:
        row, plain = store.create_api_key(tenant)
    except PomBoltError as exc:  # a new tenant id outside the rule of core.names
        bad_input(exc)
    out.print(plain, highlight=False)
    err.print(f"key {row.prefix}… created for tenant {tenant}; it is shown only now", highlight=False)


def revoke(key: Annotated[str, typer.Argument(help="Key id or the prefix printed at creation.")]) -> None:
    """Revoke an API key."""
    store = boot()
    try:
        row = store.revoke_api_key(key)
    except PomBoltError as exc:
        bad_input(exc)
    out.print(f"key {row.prefix}… revoked")
