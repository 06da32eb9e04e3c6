"""Sample files for the contract suites: a small static site with text and binary files.

``small_site()`` returns index.html, app.js, styles.css, img/logo.png (a real PNG whose bytes include
NUL and 0xff) and fonts/x.woff2 (a byte blob with every byte value). ``changed`` derives a new file set
(replace, add or delete paths), ``store`` puts a file set into a SnapshotStore and returns its id.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence

from core.files import FileMode, GeneratedFile
from core.snapshots import SnapshotStore

INDEX_HTML = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Contract site</title><link rel="stylesheet" href="styles.css"></head>
<body><h1>Hello from the contract suite</h1><img src="img/logo.png" alt="">
<script src="app.js"></script></body>
</html>
"""
APP_JS = "document.querySelector('h1').dataset.ready = 'yes';\n"
STYLES_CSS = "@font-face { font-family: X; src: url(fonts/x.woff2) format('woff2'); }\nh1 { font-family: X; }\n"


def png_bytes(width: int = 4, height: int = 2) -> bytes:
    """A valid RGBA PNG, stored uncompressed so its bytes contain NUL and 0xff."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff\x00\x80\xff" * width  # filter byte + white-ish/red pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height, 0)) + chunk(b"IEND", b"")
    data = b"\x89PNG\r\n\x1a\n" + body
    assert b"\x00" in data and b"\xff" in data
    return data


def woff2_bytes() -> bytes:
    """A font-like byte blob: the woff2 signature, then every byte value, CR/LF pairs and NULs."""
    return b"wOF2\x00\x01\x00\x00" + bytes(range(256)) + b"\r\n\n\r\x00\x00\xff\xfe" * 16


def small_site() -> list[GeneratedFile]:
    """The sample site: three text files and two binary ones."""
    return [
        GeneratedFile.text("index.html", INDEX_HTML),
        GeneratedFile.text("app.js", APP_JS),
        GeneratedFile.text("styles.css", STYLES_CSS),
        GeneratedFile(path="img/logo.png", content=png_bytes()),
        GeneratedFile(path="fonts/x.woff2", content=woff2_bytes()),
    ]


def changed(
    files: Sequence[GeneratedFile],
    updates: Mapping[str, bytes | str | None] | None = None,
    *,
    modes: Mapping[str, FileMode] | None = None,
) -> list[GeneratedFile]:
    """A copy of ``files`` with paths replaced or added (bytes/str) or deleted (None), and modes set."""
    out = {f.path: f for f in files}
    for path, content in (updates or {}).items():
        if content is None:
            out.pop(path, None)
            continue
        data = content.encode() if isinstance(content, str) else content
        mode = out[path].mode if path in out else "100644"
        out[path] = GeneratedFile(path=path, content=data, mode=mode)
    for path, mode in (modes or {}).items():
        out[path] = out[path].model_copy(update={"mode": mode})
    return sorted(out.values(), key=lambda f: f.path)


def store(snapshots: SnapshotStore, files: Sequence[GeneratedFile]) -> str:
    """Store ``files`` as a snapshot and return its id."""
    return snapshots.put(list(files)).snapshot_id
