"""The provider digests against the test vectors of shared/contracts/FLOWS.md."""

from __future__ import annotations

import re

from blocks.targets._hashing import cloudflare_asset_key, sha1_hex

HI = b"<h1>hi</h1>\n"  # FLOWS.md: one file index.html with these 12 bytes


def test_vercel_and_netlify_digest_is_sha1_of_the_bytes() -> None:
    assert len(HI) == 12
    assert sha1_hex(HI) == "5f1c1bcbe8be31cc950ac52c2765435ce4434c67"


def test_cloudflare_asset_key_matches_wrangler() -> None:
    assert cloudflare_asset_key("index.html", HI) == "17453d0cfb9bacc76d9f30d3cb9ca048"


def test_cloudflare_key_depends_on_the_extension_not_the_folder() -> None:
    assert cloudflare_asset_key("deep/dir/index.html", HI) == "17453d0cfb9bacc76d9f30d3cb9ca048"
    assert cloudflare_asset_key("index.htm", HI) != cloudflare_asset_key("index.html", HI)
    assert cloudflare_asset_key("README", HI) != cloudflare_asset_key("index.html", HI)


def test_cloudflare_key_shape_for_binary_and_empty_files() -> None:
    for content in (b"", bytes(range(256)), b"\x89PNG\r\n\x1a\n\x00\xff"):
        assert re.fullmatch(r"[0-9a-f]{32}", cloudflare_asset_key("logo.png", content))
    assert cloudflare_asset_key("a.png", b"\x00") != cloudflare_asset_key("a.png", b"\x01")
