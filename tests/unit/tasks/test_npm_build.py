"""tasks._npm_build: real npm builds of small fixture projects (node and npm required; no registry needed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.errors import BuildFailed, ConfigError
from core.settings import Limits
from tasks._npm_build import OUTPUT_DIRS, build_env, build_script, run_build, work_parent
from tests.conftest import require_tool

BUILD_JS = """
const fs = require('fs');
fs.mkdirSync('dist/img', {recursive: true});
fs.writeFileSync('dist/index.html', '<h1>built</h1>\\n');
fs.writeFileSync('dist/img/dot.bin', Buffer.from([0, 255, 10, 13]));
console.log('built ok');
"""


@pytest.fixture(autouse=True)
def _node() -> None:
    require_tool("node", "npm builds run generated build scripts with node")
    require_tool("npm", "npm builds install dependencies and run scripts with npm")


def _project(root: Path, scripts: dict[str, str], files: dict[str, str] | None = None, **extra: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    package = {"name": "fixture", "version": "1.0.0", "private": True, "scripts": scripts, **extra}
    (root / "package.json").write_text(json.dumps(package))
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    return root


def test_build_script_detection() -> None:
    assert build_script(b'{"scripts": {"build": "vite build"}}') == "vite build"
    assert build_script(b'{"scripts": {"test": "x"}}') is None
    assert build_script(b"not json") is None
    assert build_script(None) is None


def test_a_plain_node_build_produces_dist(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", {"build": "node build.js"}, {"build.js": BUILD_JS})
    out = run_build(project, timeout=60, offline=True, workdir=tmp_path / "work")
    assert out.output_dir == "dist"
    assert {f.path: f.content for f in out.files} == {
        "img/dot.bin": b"\x00\xff\n\r",
        "index.html": b"<h1>built</h1>\n",
    }
    assert out.steps == ["npm run build"]  # no dependency: nothing to install
    assert not (project / "dist").exists()  # the source folder is untouched
    assert not [p for p in work_parent(tmp_path / "work").iterdir() if p.name.startswith("pombolt-build-")]


def test_npm_ci_installs_a_local_tarball_offline(tmp_path: Path) -> None:
    lib = _project(tmp_path / "lib", {}, {"index.js": "module.exports = () => '<p>from the tarball</p>\\n';\n"})
    (lib / "package.json").write_text(json.dumps({"name": "greet-lib", "version": "1.2.3", "main": "index.js"}))
    project = _project(
        tmp_path / "app",
        {"build": "node build.js"},
        {
            "build.js": "const fs=require('fs');fs.mkdirSync('build');"
            "fs.writeFileSync('build/index.html', require('greet-lib')());\n"
        },
        dependencies={"greet-lib": "file:greet-lib-1.2.3.tgz"},
    )
    env = build_env(tmp_path / "npm-env", offline=True)
    subprocess.run(
        ["npm", "pack", str(lib), "--pack-destination", str(project)], env=env, check=True, capture_output=True
    )
    subprocess.run(["npm", "install", "--package-lock-only"], cwd=project, env=env, check=True, capture_output=True)
    assert (project / "package-lock.json").is_file() and not (project / "node_modules").exists()

    out = run_build(project, timeout=120, offline=True, workdir=tmp_path / "work")
    assert out.steps == ["npm ci", "npm run build"]
    assert out.output_dir == "build"
    assert [(f.path, f.content) for f in out.files] == [("index.html", b"<p>from the tarball</p>\n")]


def test_a_failing_build_carries_the_last_60_log_lines(tmp_path: Path) -> None:
    script = (
        "for (let i = 1; i <= 100; i++) console.log('line ' + i);\nconsole.error('boom: bad import'); process.exit(3)"
    )
    project = _project(tmp_path / "p", {"build": "node fail.js"}, {"fail.js": script})
    with pytest.raises(BuildFailed) as info:
        run_build(project, timeout=60, offline=True)
    message = info.value.message
    assert "'npm run build' failed (exit" in message
    assert "boom: bad import" in message and "line 100" in message and "line 60\n" in message
    assert "line 30\n" not in message  # only the tail
    log = message.split("build log:\n", 1)[1].splitlines()
    assert len(log) == 60
    assert info.value.retryable is False


def test_the_build_sees_no_token_of_the_calling_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "GITHUB_TOKEN": "ghp_builddoesnotseeme0000000000000000",
        "NETLIFY_AUTH_TOKEN": "nfp_builddoesnotseeme000000000",
        "POMBOLT_TEST_SECRET": "pombolt-secret-value-123",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-456",
        "NPM_TOKEN": "npm-secret-value-789",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    dump = (
        "const fs=require('fs');fs.mkdirSync('dist');console.log(JSON.stringify(process.env));"
        "fs.writeFileSync('dist/env.json', JSON.stringify(process.env));"
    )
    project = _project(tmp_path / "p", {"build": "node env.js"}, {"env.js": dump})
    out = run_build(project, timeout=60, offline=True, workdir=tmp_path / "work")
    seen = json.loads(out.files[0].content)
    text = out.files[0].content.decode()
    for name, value in secrets.items():
        assert name not in seen and value not in text
    assert not any(k.startswith("POMBOLT_") for k in seen)
    assert seen["CI"] == "true"
    assert seen["HOME"].startswith(str(work_parent(tmp_path / "work")))
    assert seen["npm_config_cache"].startswith(str(work_parent(tmp_path / "work")))


def test_a_build_over_the_time_limit_is_stopped(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", {"build": "node -e \"console.log('waiting'); setTimeout(()=>{}, 30000)\""})
    with pytest.raises(BuildFailed, match=r"did not finish within 1 s(.|\n)*waiting"):
        run_build(project, timeout=1, offline=True)


def test_a_build_that_prints_too_much_is_stopped(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", {"build": "node -e \"for(;;) console.log('x'.repeat(100))\""})
    with pytest.raises(BuildFailed, match="printed more than 20000 bytes"):
        run_build(project, timeout=30, max_log_bytes=20_000, offline=True)


def test_missing_node_is_a_config_error_naming_it(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", {"build": "node build.js"}, {"build.js": BUILD_JS})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    with pytest.raises(ConfigError, match="node is not installed") as info:
        run_build(project, timeout=10, path=str(empty))
    assert "Node.js" in info.value.message


def test_output_dir_setting_missing_dir_and_path_rules(tmp_path: Path) -> None:
    make = "const fs=require('fs');fs.mkdirSync('site/out',{recursive:true});fs.writeFileSync('site/out/a.txt','a');"
    custom = _project(tmp_path / "c", {"build": "node m.js"}, {"m.js": make}, pombolt={"outputDir": "site/out"})
    assert run_build(custom, timeout=60, offline=True).output_dir == "site/out"

    nothing = _project(tmp_path / "n", {"build": "node -e 1"})
    with pytest.raises(BuildFailed, match="none of the output folders " + ", ".join(OUTPUT_DIRS)):
        run_build(nothing, timeout=60, offline=True)

    many = "const fs=require('fs');fs.mkdirSync('dist');for(let i=0;i<5;i++)fs.writeFileSync('dist/f'+i,'x');"
    big = _project(tmp_path / "b", {"build": "node m.js"}, {"m.js": many})
    with pytest.raises(BuildFailed, match="max-files"):
        run_build(big, timeout=60, offline=True, limits=Limits(max_files=3))
