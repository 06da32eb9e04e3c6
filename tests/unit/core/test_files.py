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
    (".github/wor\u212aflows/ci.yml", "no-workflows"),  # KELVIN SIGN: NFC makes it 'K'
    ("site/.github/workflows/ci.yml", "no-workflows"),
    (".github/actions/setup/action.yml", "no-workflows"),
    (".gitea/workflows/ci.yml", "no-workflows"),
    (".forgejo/workflows/ci.yml", "no-workflows"),
    (".gitlab-ci.yml", "no-workflows"),
    (".GITLAB-CI.YML", "no-workflows"),
    ("ci/.gitlab-ci.yml", "no-workflows"),
    (".circleci/config.yml", "no-workflows"),
    ("bitbucket-pipelines.yml", "no-workflows"),
    ("azure-pipelines.yml", "no-workflows"),
    (".husky/pre-commit", "no-workflows"),
    (".husky/_/husky.sh", "no-workflows"),
    ("lefthook.yml", "no-workflows"),
    (".pre-commit-config.yaml", "no-workflows"),
    (".gitmodules", "no-git-metadata"),
    ("vendor/.GitModules", "no-git-metadata"),
    ("GITMOD~1", "no-git-metadata"),
    (".gitattributes", "no-git-metadata"),
    ("src/.gitattributes", "no-git-metadata"),
    ("con", "no-reserved-names"),
    ("CON", "no-reserved-names"),
    ("nul", "no-reserved-names"),
    ("prn", "no-reserved-names"),
    ("aux.txt", "no-reserved-names"),
    ("COM1.js", "no-reserved-names"),
    ("com0", "no-reserved-names"),
    ("lpt9", "no-reserved-names"),
    ("Lpt\u00b3.log", "no-reserved-names"),
    ("nul.tar.gz", "no-reserved-names"),
    ("con .txt", "no-reserved-names"),
    ("aux:stream", "no-reserved-names"),
    ("conin$", "no-reserved-names"),
    ("CONOUT$.txt", "no-reserved-names"),
    ("src/Con/index.js", "no-reserved-names"),
    ("a/b/prn/c.html", "no-reserved-names"),
    ("a\ud800b.html", "no-surrogates"),
    ("\udfff", "no-surrogates"),
    ("dir\udc80/x", "no-surrogates"),
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


CI_PATHS = [p for p, rule in BAD_PATHS if rule == "no-workflows"]


@pytest.mark.parametrize("path", CI_PATHS)
def test_every_ci_file_and_hook_is_allowed_only_when_the_project_allows_ci_configuration(path: str) -> None:
    with pytest.raises(PathRuleViolation) as info:
        check_path(path)
    assert "unless the project allows them (POMBOLT_ALLOW_WORKFLOWS)" in info.value.message
    expected = unicodedata.normalize("NFC", path)
    assert check_path(path, allow_workflows=True) == expected
    assert [x.path for x in validate_files([f(path)], allow_workflows=True)] == [expected]


@pytest.mark.parametrize(
    ("path", "rule"),
    [(".gitmodules", "no-git-metadata"), ("src/.gitattributes", "no-git-metadata"), ("con.yml", "no-reserved-names")],
)
def test_allowing_ci_configuration_opens_neither_git_metadata_nor_device_names(path: str, rule: str) -> None:
    with pytest.raises(PathRuleViolation) as info:
        check_path(path, allow_workflows=True)
    assert_violation(info.value, rule)


def test_each_ci_refusal_says_which_ci_it_is() -> None:
    said = {}
    for path in (".gitlab-ci.yml", ".circleci/config.yml", "bitbucket-pipelines.yml", ".husky/pre-commit"):
        with pytest.raises(PathRuleViolation) as info:
            check_path(path)
        said[path] = info.value.message
    assert "GitLab CI" in said[".gitlab-ci.yml"]
    assert "CircleCI" in said[".circleci/config.yml"]
    assert "Bitbucket Pipelines" in said["bitbucket-pipelines.yml"]
    assert "git hooks (husky)" in said[".husky/pre-commit"]


def test_device_names_are_refused_naming_the_segment_and_device() -> None:
    with pytest.raises(PathRuleViolation) as info:
        check_path("src/Com1.min.js/x")
    assert_violation(info.value, "no-reserved-names")
    assert "segment 'Com1.min.js' is the Windows device name 'COM1'" in info.value.message


def test_a_lone_surrogate_in_a_path_is_refused_escaped_not_left_to_fail_in_storage() -> None:
    with pytest.raises(PathRuleViolation) as info:
        validate_files([f("index.html"), f("img/\ud83d.png")])
    assert_violation(info.value, "no-surrogates")
    assert info.value.path == "img/\\ud83d.png"
    assert "U+D83D" in info.value.message
    assert info.value.message.encode("utf-8")  # the message itself is sendable as UTF-8


@pytest.mark.parametrize(
    ("path", "content", "where"),
    [
        ("app.js", b"const s = '\xed\xa0\x80';\n", "U+D800 alone at byte 11"),
        ("style.CSS", b"a::after { content: '\xed\xbf\xbf'; }", "U+DFFF alone at byte 21"),
        ("LICENSE", b"MIT \xc2\xa9 \xed\xb0\x80", "U+DC00 alone at byte 7"),  # no extension, but UTF-8 text
        ("data.json", b'\xef\xbb\xbf["\xed\xa0\xbd"]', "U+D83D alone at byte 5"),  # UTF-8 with a BOM
        ("notes.txt", b"\xff\xfe" + "ok".encode("utf-16-le") + b"\x00\xd8", "U+D800 alone at UTF-16 code unit 2"),
        ("notes.txt", b"\xfe\xff" + b"\xdc\x00\x00a", "U+DC00 alone at UTF-16 code unit 0"),
    ],
)
def test_a_lone_surrogate_in_text_content_is_refused_naming_the_file(path: str, content: bytes, where: str) -> None:
    with pytest.raises(PathRuleViolation) as info:
        validate_files([f("index.html", b"<h1>ok</h1>"), f(path, content)])
    assert_violation(info.value, "no-surrogates")
    assert info.value.path == path
    assert where in info.value.message


def test_text_built_from_a_string_with_a_lone_surrogate_reaches_validation_and_is_refused_there() -> None:
    made = GeneratedFile.text("app.js", "const s = '\ud800';")  # no UnicodeEncodeError without a path
    with pytest.raises(PathRuleViolation) as info:
        validate_files([made])
    assert (info.value.rule, info.value.path) == ("no-surrogates", "app.js")


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("app.js", "const s = '\U0001f345 caf\u00e9';".encode()),  # astral and accented characters are text
        ("notes.txt", b"\xff\xfe" + "tomato \U0001f345".encode("utf-16-le")),  # a surrogate PAIR in UTF-16
        ("img/a.png", b"\x89PNG\r\n\x1a\n\xff\xed\xa0\x80\x00"),  # binary: bytes are not characters
        ("font.woff2", b"wOF2\xed\xa0\x80\xff\xfe"),
        ("odd.txt", b"\xff\xfeo"),  # an odd UTF-16 byte count is not our business
    ],
)
def test_real_characters_and_binary_files_are_not_mistaken_for_lone_surrogates(path: str, content: bytes) -> None:
    assert [x.content for x in validate_files([f(path, content)])] == [content]


@pytest.mark.parametrize(
    "path",
    [
        "index.html",
        "src/app.js",
        "a/b/c/d.txt",
        ".gitignore",
        ".github/CODEOWNERS",
        "x.git/y",
        "git/config",
        "..a",
        "a..b/c",
        "a~",
        "ab:c",
        "a b/c d.txt",
        "café/ünï.md",
        "a" * 255,
        ".github/dependabot.yml",
        ".github/ISSUE_TEMPLATE/bug.md",
        "docs/workflows/ci.md",
        "gitlab-ci.yml",
        "husky/pre-commit.md",
        ".gitmodules.md",
        "gitattributes.txt",
        "console.js",
        "connect/index.html",
        "auxiliary.txt",
        "com10",
        "lpt.txt",
        "nullish.js",
        "icons/con-tick.svg",
        "tomato-\U0001f345.txt",
    ],
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
