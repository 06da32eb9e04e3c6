"""The rules for names users choose (saved Block names, project names, Block references) and for tenant ids.

A **name** is 1-63 characters: lowercase ASCII letters, digits and dashes, not starting with a dash
(``acme-netlify``, ``todo-app``). It is valid as a URL path segment, a Prefect Block document name part
and a DNS label, so it needs no escaping anywhere it is used.

A **tenant id** follows the same grammar (``acme``, ``local``, ``team-7``): lowercase, so ``Acme`` and
``acme`` cannot be two tenants, and without ``_`` or ``.``, so ``a_b``, ``a.b`` and ``a-b`` cannot be three
tenants that some escaping maps to one. Tenant ids name folders (``tenants/<id>/``, ``repos/<id>/``) and
Prefect concurrency limits (``tenant:<id>``) as they are; a tenant's Prefect Block document names embed only a
fixed-length digest of the id (``blocks.catalog.document_name``), so they cannot collide whatever the names.
Tenants are created only through ``TenantStore.ensure_tenant`` (``pombolt keys create --tenant``), which
refuses an id outside the grammar; a tenant created before the rule existed keeps working.
"""

from __future__ import annotations

import re

from core.errors import ConfigError

__all__ = [
    "NAME_PATTERN",
    "NAME_RULE",
    "TENANT_PATTERN",
    "TENANT_RULE",
    "check_name",
    "check_tenant_id",
    "is_valid_name",
    "is_valid_tenant_id",
    "name_error",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""The rule as a regular expression (anchored; usable as a pydantic ``Field(pattern=...)``)."""

NAME_RULE = "1-63 lowercase letters, digits and dashes, not starting with a dash"
"""The rule in words, for error messages and documentation."""

TENANT_PATTERN = NAME_PATTERN
"""The tenant id rule as a regular expression (the same grammar as names)."""

TENANT_RULE = NAME_RULE
"""The tenant id rule in words."""

_NAME = re.compile(NAME_PATTERN)
_TENANT = re.compile(TENANT_PATTERN)


def is_valid_name(name: str) -> bool:
    """Tell whether ``name`` follows the rule (a trailing newline does not)."""
    return _NAME.fullmatch(name) is not None


def name_error(name: str, what: str = "name") -> ConfigError:
    """The error for a name that breaks the rule (``what`` says whose name it is, e.g. ``Block name``)."""
    return ConfigError(f"{what} {name!r} is invalid; use {NAME_RULE}")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` when it follows the rule.

    Args:
        name: The name to check.
        what: Whose name it is, for the message (``Block name``, ``project name``).

    Raises:
        ConfigError: When the name is not 1-63 lowercase letters, digits and dashes.
    """
    if not is_valid_name(name):
        raise name_error(name, what)
    return name


def is_valid_tenant_id(tenant_id: str) -> bool:
    """Tell whether ``tenant_id`` follows the tenant id rule."""
    return _TENANT.fullmatch(tenant_id) is not None


def check_tenant_id(tenant_id: str) -> str:
    """Return ``tenant_id`` when it follows the tenant id rule.

    Raises:
        ConfigError: When it is not 1-63 lowercase letters, digits and dashes (``Acme``, ``a_b``, ``a.b``).
    """
    if not is_valid_tenant_id(tenant_id):
        raise ConfigError(f"tenant id {tenant_id!r} is invalid; use {TENANT_RULE}")
    return tenant_id
