"""What the local Blocks (local Git repositories, local static sites) share: a folder they must be able to write."""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.errors import ConfigError

__all__ = ["require_writable"]


def require_writable(root: Path, what: str) -> None:
    """Create ``root`` when missing and prove a file can be written in it.

    Args:
        root: The folder.
        what: What the folder holds, for the message (``repository``, ``sites``).

    Raises:
        ConfigError: Naming the folder and how to fix it.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{what} folder {root} is not writable ({exc.strerror or exc}); "
            "set the block's root or POMBOLT_DATA_DIR to a folder you can write"
        ) from exc
