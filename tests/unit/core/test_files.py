"""Path rules for generated (untrusted) files — DESIGN §6. Every violation names the path and the rule."""

from __future__ import annotations

import hashlib
import itertools
import unicodedata
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from core.errors import PathRuleViolation
from core.files import GeneratedFile, check_path, untrusted_file, validate_files
from core.settings import Limits


def f(path: str, content: bytes = b"x", mode: str = "100644") -> GeneratedFile:
    return GeneratedFile(path=path, content=content, mode=mode)  # type: ignore[arg-type]


def assert_violation(err: PathRuleViolation, rule: str) -> None:
    assert err.rule == rule, f"expected rule {rule!r}, got {err.rule!r}: {err}"
    assert err.code == "output.path_rule"
    assert err.retryable is False
    assert err.path in str(err), "the message must show the offending path"
    assert f"'{rule}'" in str(err), "the message must name the rule"
    assert err.path.isprintable(), "the reported path must be printable"


BAD_PATHS = [
    ("../x", "no-parent-segments"),
    ("a/../../b", "no-parent-segments"),
    ("a/..", "no-parent-segments"),
    ("..", "no-parent-segments"),
    ("./a", "no-parent-segments"),
    ("a/./b", "no-parent-segments"),
    ("a//b", "no-parent-segments"),
    ("a/", "no-parent-segments"),
    ("/etc/x", "relative"),
    ("/", "relative"),
    ("C:/x", "relative"),
    ("c:x", "relative"),
    ("~/x", "relative"),
    ("~root/.ssh/authorized_keys", "relative"),
    ("\\\\server\\share\\x", "relative"),
    ("a\\b", "posix-separators"),
    ("..\\x", "posix-separators"),
    (".git/config", "no-git-dir"),
    ("sub/.git/hooks/x", "no-git-dir"),
    (".GIT/config", "no-git-dir"),
    (".git", "no-git-dir"),
    (".Git", "no-git-dir"),
    ("sub/.git", "no-git-dir"),
    (".github/workflows/ci.yml", "no-workflows"),
    (".GitHub/Workflows/deploy.yml", "no-workflows"),
    ("a\x00b", "no-control-characters"),
    ("a\nb", "no-control-characters"),
    ("a\rb", "no-control-characters"),
    ("a\tb", "no-control-characters"),
    ("a\x1bb", "no-control-characters"),
    ("a\x7fb", "no-control-characters"),
    ("evil\u202egpj.exe", "no-control-characters"),
    ("zero\u200bwidth", "no-control-characters"),
    ("line\u2028sep", "no-control-characters"),
    ("", "not-empty"),
    ("   ", "not-empty"),
    ("a" * 256, "max-length"),
    ("d/" * 127 + "ab", "max-length"),
]


@pytest.mark.parametrize(("path", "rule"), BAD_PATHS, ids=[repr(p)[:40] for p, _ in BAD_PATHS])
def test_check_path_refuses(path: str, rule: str) -> None:
    with pytest.raises(PathRuleViolation) as info:
        check_path(path)
    assert_violation(info.value, rule)


@pytest.mark.parametrize(("path", "rule"), BAD_PATHS, ids=[repr(p)[:40] for p, _ in BAD_PATHS])
def test_validate_files_refuses_the_same_paths(path: str, rule: str) -> None:
    with pytest.raises(PathRuleViolation) as info:
        validate_files([f("ok.txt"), f(path)])
    assert_violation(info.value, rule)


def test_printable_paths_are_reported_as_given() -> None:
    with pytest.raises(PathRuleViolation) as info:
        check_path("src/../../etc/passwd")
    assert info.value.path == "src/../../etc/passwd"
    assert "src/../../etc/passwd" in str(info.value)
    with pytest.raises(PathRuleViolation) as info:
        check_path("café/..\\ß")
    assert info.value.path == "café/..\\ß"
    assert "'café/..\\ß'" in str(info.value)


def test_control_characters_are_escaped_in_the_report() -> None:
    with pytest.raises(PathRuleViolation) as info:
        check_path("a\x00b\nc")
    assert "\x00" not in str(info.value) and "\n" not in str(info.value)
    assert info.value.path == "a\\x00b\\nc"


def test_workflows_are_allowed_only_when_the_project_allows_them() -> None:
    assert check_path(".github/workflows/ci.yml", allow_workflows=True) == ".github/workflows/ci.yml"
    files = validate_files([f(".github/workflows/ci.yml")], allow_workflows=True)
    assert [x.path for x in files] == [".github/workflows/ci.yml"]
    # other .github files are fine either way; allowing workflows does not open .git/
    assert check_path(".github/dependabot.yml") == ".github/dependabot.yml"
    with pytest.raises(PathRuleViolation) as info:
        check_path(".git/hooks/pre-commit", allow_workflows=True)
    assert_violation(info.value, "no-git-dir")


@pytest.mark.parametrize(
    "path",
    ["index.html", "src/app.js", "a/b/c/d.txt", ".gitignore", ".github/CODEOWNERS", "x.git/y", "git/config",
     "..a", "a..b/c", "a~", "ab:c", "a b/c d.txt", "café/ünï.md", "a" * 255],
)
def test_check_path_accepts_ordinary_paths(path: str) -> None:
    assert check_path(path) == path


def test_path_length_limit_comes_from_limits() -> None:
    assert check_path("abcde", limits=Limits(max_path_chars=5)) == "abcde"
    with pytest.raises(PathRuleViolation) as info:
        check_path("abcdef", limits=Limits(max_path_chars=5))
    assert_violation(info.value, "max-length")


# --- whole generations -----------------------------------------------------------------------------
def test_valid_nested_files_are_accepted_sorted_and_unchanged() -> None:
    given = [
        f("src/z.js", b"z"),
        f("index.html", b"<html>\r\n\x00\xff"),
        f("src/a/b.css", b"b", "100755"),
        f("README.md", b"r"),
    ]
    out = validate_files(given)
    assert [x.path for x in out] == ["README.md", "index.html", "src/a/b.css", "src/z.js"]
    assert {x.path: (x.content, x.mode) for x in out} == {x.path: (x.content, x.mode) for x in given}


def test_validate_files_takes_any_iterable() -> None:
    out = validate_files(f(p) for p in ["b", "a"])
    assert [x.path for x in out] == ["a", "b"]


def test_unicode_names_are_nfc_normalised() -> None:
    decomposed = "cafe\u0301/men\u0303u.html"
    composed = unicodedata.normalize("NFC", decomposed)
    assert composed != decomposed
    assert check_path(decomposed) == composed
    (out,) = validate_files([f(decomposed, b"menu")])
    assert out.path == composed
    assert out.content == b"menu"


def test_more_than_max_files_is_refused_naming_the_first_extra_file() -> None:
    limits = Limits(max_files=3)
    assert len(validate_files([f(f"f{i}") for i in range(3)], limits=limits)) == 3
    with pytest.raises(PathRuleViolation) as info:
        validate_files([f(f"f{i}") for i in range(4)], limits=limits)
    assert_violation(info.value, "max-files")
    assert info.value.path == "f3"


def test_max_files_stops_an_endless_generator() -> None:
    endless: Iterator[GeneratedFile] = (f(f"f{i}") for i in itertools.count())
    with pytest.raises(PathRuleViolation) as info:
        validate_files(endless, limits=Limits(max_files=10))
    assert_violation(info.value, "max-files")


def test_one_file_over_max_file_bytes_is_refused() -> None:
    limits = Limits(max_file_bytes=10)
    assert validate_files([f("ten", b"0123456789")], limits=limits)
    with pytest.raises(PathRuleViolation) as info:
        validate_files([f("small", b"1"), f("big.bin", b"01234567890")], limits=limits)
    assert_violation(info.value, "max-file-size")
    assert info.value.path == "big.bin"
    assert "11 bytes" in str(info.value)


def test_total_over_max_total_bytes_is_refused() -> None:
    limits = Limits(max_file_bytes=10, max_total_bytes=25)
    assert validate_files([f("a", b"x" * 10), f("b", b"x" * 10), f("c", b"x" * 5)], limits=limits)
    with pytest.raises(PathRuleViolation) as info:
        validate_files([f("a", b"x" * 10), f("b", b"x" * 10), f("c", b"x" * 6)], limits=limits)
    assert_violation(info.value, "max-total-size")
    assert info.value.path == "c"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("index.html", "index.html"),
        ("Index.HTML", "index.html"),
        ("src/App.js", "SRC/app.js"),
        ("STRASSE.txt", "straße.txt"),
        ("caf\u00e9.txt", "cafe\u0301.txt"),  # same name, NFC vs NFD
    ],
)
def test_duplicate_paths_ignoring_case_and_normalisation_are_refused(first: str, second: str) -> None:
    with pytest.raises(PathRuleViolation) as info:
        validate_files([f(first, b"1"), f(second, b"2")])
    assert_violation(info.value, "unique")


@pytest.mark.parametrize(
    "paths",
    [["a", "a/b"], ["a/b/c", "a/b"], ["x/y/z/w", "x"], ["A", "a/b"], ["docs/Guide", "docs/guide/intro.md"]],
)
def test_a_path_that_is_both_a_file_and_a_folder_is_refused(paths: list[str]) -> None:
    with pytest.raises(PathRuleViolation) as info:
        validate_files([f(p) for p in paths])
    assert_violation(info.value, "file-not-folder")


def test_sibling_names_sharing_a_prefix_are_not_a_file_folder_clash() -> None:
    assert [x.path for x in validate_files([f("ab"), f("a/b"), f("a.b/c")])] == ["a.b/c", "a/b", "ab"]


# --- untrusted parts -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["120000", "symlink"])
def test_untrusted_symlinks_are_refused_even_with_a_fine_path(mode: str) -> None:
    with pytest.raises(PathRuleViolation) as info:
        untrusted_file("public/link", b"/etc/passwd", mode)
    assert_violation(info.value, "no-symlinks")
    assert info.value.path == "public/link"


@pytest.mark.parametrize("mode", ["160000", "040000", "100664", "", "755"])
def test_untrusted_unknown_modes_are_refused(mode: str) -> None:
    with pytest.raises(PathRuleViolation) as info:
        untrusted_file("x", b"", mode)
    assert_violation(info.value, "file-mode")


@pytest.mark.parametrize("mode", ["100644", "100755"])
def test_untrusted_regular_files_keep_their_mode(mode: str) -> None:
    out = untrusted_file("bin/run.sh", b"#!/bin/sh\n", mode)
    assert (out.path, out.content, out.mode) == ("bin/run.sh", b"#!/bin/sh\n", mode)


def test_generated_file_itself_cannot_hold_a_symlink_mode() -> None:
    with pytest.raises(ValidationError):
        GeneratedFile(path="link", content=b"target", mode="120000")  # type: ignore[arg-type]


def test_generated_file_hash_size_and_text() -> None:
    t = GeneratedFile.text("a.txt", "héllo\n")
    assert t.content == "héllo\n".encode()
    assert t.size == 7
    assert t.sha256 == hashlib.sha256("héllo\n".encode()).hexdigest()
    assert t.mode == "100644"
