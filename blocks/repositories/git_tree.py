"""Git object ids computed locally, in pure Python (SHA-1 of git objects).

A blob id is ``sha1(b"blob <size>\\0" + bytes)``; a tree id is the SHA-1 of ``b"tree <size>\\0"`` plus,
for each entry in git's order, ``b"<mode> <name>\\0" + <20-byte id>``. Git sorts entries by name, with
sub-trees compared as if their name ended in ``/``, and writes directory modes as ``40000``.
Comparing :func:`tree_id` of a snapshot with the tree of the branch head tells, without any write,
whether a commit is needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["TreeEntry", "blob_id", "tree_id"]

_DIR_MODE = "40000"


@dataclass(frozen=True)
class TreeEntry:
    """One file of a tree: POSIX path, git mode (``100644``/``100755``) and its blob id."""

    path: str
    mode: str
    sha: str


def _object_id(kind: bytes, body: bytes) -> str:
    return hashlib.sha1(kind + b" %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


def blob_id(content: bytes) -> str:
    """The git blob id of ``content``.

    Example:
        ``blob_id(b"<h1>hi</h1>\\n") == "ab55abe579831bf2fdca5f584528c8924b99c2da"``.
    """
    return _object_id(b"blob", content)


def tree_id(entries: Iterable[TreeEntry]) -> str:
    """The id of the root tree holding ``entries`` (nested paths become sub-trees)."""
    root: dict[str, object] = {}
    for entry in entries:
        *dirs, name = entry.path.split("/")
        node = root
        for part in dirs:
            child = node.setdefault(part, {})
            assert isinstance(child, dict), f"{entry.path}: {part} is both a file and a folder"
            node = child
        node[name] = entry
    return _write(root)


def _write(node: dict[str, object]) -> str:
    def key(item: tuple[str, object]) -> bytes:
        name, value = item
        return name.encode() + (b"/" if isinstance(value, dict) else b"")

    body = bytearray()
    for name, value in sorted(node.items(), key=key):
        if isinstance(value, dict):
            mode, sha = _DIR_MODE, _write(value)
        else:
            assert isinstance(value, TreeEntry)
            mode, sha = value.mode, value.sha
        body += f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha)
    return _object_id(b"tree", bytes(body))
