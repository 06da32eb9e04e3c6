"""The one rule for names users choose: saved Block names, project names and Block references.

A name is 1-63 characters: lowercase ASCII letters, digits and dashes, not starting with a dash
(``acme-netlify``, ``todo-app``). It is valid as a URL path segment, a Prefect Block document name part
and a DNS label, so it needs no escaping anywhere it is used.
"""

from __future__ import annotations

import re

from core.errors import ConfigError

__all__ = ["NAME_PATTERN", "NAME_RULE", "check_name", "is_valid_name", "name_error"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""The rule as a regular expression (anchored; usable as a pydantic ``Field(pattern=...)``)."""

NAME_RULE = "1-63 lowercase letters, digits and dashes, not starting with a dash"
"""The rule in words, for error messages and documentation."""

_NAME = re.compile(NAME_PATTERN)


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
