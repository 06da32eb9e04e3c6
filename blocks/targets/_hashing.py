"""Content digests deployment providers key files by (see ``shared/contracts/FLOWS.md``).

- Cloudflare Pages asset key: BLAKE3 of the *text* ``base64(bytes) + extension-without-dot``, hex, first 32
  characters (what wrangler computes; the same bytes under another extension get another key).
- Vercel (and Netlify): SHA-1 hex of the raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath

import blake3

__all__ = ["cloudflare_asset_key", "sha1_hex"]

_CF_KEY_LENGTH = 32


def cloudflare_asset_key(path: str, content: bytes) -> str:
    """Return the Cloudflare Pages asset key of a file.

    Args:
        path: The file's site path (only its extension is used, e.g. ``css/site.css`` -> ``css``).
        content: The file's bytes.

    Returns:
        32 lowercase hex characters.
    """
    extension = posixpath.splitext(path)[1].removeprefix(".")
    text = base64.b64encode(content).decode("ascii") + extension
    return blake3.blake3(text.encode("utf-8")).hexdigest()[:_CF_KEY_LENGTH]


def sha1_hex(content: bytes) -> str:
    """Return the SHA-1 hex digest of ``content`` (40 lowercase hex characters)."""
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()
