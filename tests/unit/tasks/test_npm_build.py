"""tasks._build.npm: real npm builds of small fixture projects (node, npm and bubblewrap required; no registry
needed), and the refusal of a build where bubblewrap is missing (a real subprocess whose PATH has no bwrap).

The attacks on the sandbox itself are in tests/security/test_build_sandbox.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import BuildFailed, ConfigError
from core.settings import Limits
from tasks._build.env import build_env, work_parent
from tasks._build.npm import run_build
from tasks._build.output import OUTPUT_DIRS
from tasks._build.project import build_script
from tests.conftest import require_tool

BUILD_JS = """
const fs = require('fs');
fs.mkdirSync('dist/img', {recursive: true});
fs.writeFileSync('dist/index.html', '<h1>built</h1>\\n');
fs.writeFileSync('dist/img/dot.bin', Buffer.from([0, 255, 10, 13]));
console.log('built ok');
"""
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _node() -> None:
    require_tool("node", "npm builds run generated build scripts with node")
    require_tool("npm", "npm builds install dependencies and run scripts with npm")


@pytest.fixture
def bwrap() -> str:
    """bubblewrap: every build of these tests runs in the sandbox (no tenant given counts as an API tenant)."""
    return require_tool("bwrap", "builds of generated code run in a bubblewrap sandbox (apt-get install bubblewrap)")


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


def test_a_plain_node_build_produces_dist(tmp_path: Path, bwrap: str) -> None:
    where = "fs.writeFileSync('dist/img/where.txt', process.cwd());"
    project = _project(tmp_path / "p", {"build": "node build.js"}, {"build.js": BUILD_JS + where})
    out = run_build(project, timeout=60, offline=True, workdir=tmp_path / "work")
    assert out.output_dir == "dist"
    files = {f.path: f.content for f in out.files}
    work = Path(files.pop("img/where.txt").decode()).parent
    assert files == {"img/dot.bin": b"\x00\xff\n\r", "index.html": b"<h1>built</h1>\n"}
    assert out.steps == ["npm run build"]  # no dependency: nothing to install
    assert not (project / "dist").exists()  # the source folder is untouched
    assert work.parent == work_parent(tmp_path / "work") and work.name.startswith("pombolt-build-")
    assert not work.exists(), "the work dir is removed afterwards"


def test_npm_ci_installs_a_local_tarball_offline(tmp_path: Path, bwrap: str) -> None:
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


def test_a_failing_build_carries_the_last_60_log_lines(tmp_path: Path, bwrap: str) -> None:
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


def test_the_build_sees_no_token_of_the_calling_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bwrap: str
) -> None:
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


def test_a_build_over_the_time_limit_is_stopped(tmp_path: Path, bwrap: str) -> None:
    project = _project(tmp_path / "p", {"build": "node -e \"console.log('waiting'); setTimeout(()=>{}, 30000)\""})
    with pytest.raises(BuildFailed, match=r"did not finish within 1 s(.|\n)*waiting"):
        run_build(project, timeout=1, offline=True)


def test_a_build_that_prints_too_much_is_stopped(tmp_path: Path, bwrap: str) -> None:
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


def test_output_dir_setting_missing_dir_and_path_rules(tmp_path: Path, bwrap: str) -> None:
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


# -- where bubblewrap is missing: refused, except for the local CLI that opted out ----------------------------

REFUSAL = """
import json, sys
from pathlib import Path
from core.errors import PomBoltError
from tasks._build.npm import run_build
try:
    out = run_build(Path(sys.argv[1]), timeout=60, offline=True, tenant_id=sys.argv[2] or None)
    print(json.dumps({"built": sorted(f.path for f in out.files)}))
except PomBoltError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": exc.message}))
"""


@pytest.fixture
def tools() -> Iterator[Path]:
    """A folder with node, npm and sh but no bwrap, that the build user (as root: nobody) can reach."""
    folder = Path(tempfile.mkdtemp(prefix="pombolt-tools-"))
    folder.chmod(0o755)
    for tool in ("node", "npm", "sh"):
        (folder / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _build_without_bwrap(tmp_path: Path, tools: Path, tenant: str, sandbox: str) -> dict[str, object]:
    """Run a real build in a fresh Python whose PATH has node, npm and sh but no bwrap (nothing mocked)."""
    project = _project(tmp_path / f"p-{tenant}-{sandbox}", {"build": "node build.js"}, {"build.js": BUILD_JS})
    env = {**os.environ, "PATH": str(tools), "POMBOLT_BUILD_SANDBOX": sandbox}
    done = subprocess.run(
        [sys.executable, "-c", REFUSAL, str(project), tenant],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("tenant", ["acme", ""])
def test_an_api_tenants_build_is_refused_where_bwrap_is_missing(tmp_path: Path, tools: Path, tenant: str) -> None:
    got = _build_without_bwrap(tmp_path, tools, tenant, "required")
    assert got["error"] == "ConfigError", got
    message = str(got["message"])
    assert "bwrap is not installed" in message and "apt-get install bubblewrap" in message
    assert "POMBOLT_BUILD_SANDBOX=off" not in message, "an API tenant is not offered the opt-out"


def test_off_is_not_honoured_for_an_api_tenant(tmp_path: Path, tools: Path) -> None:
    got = _build_without_bwrap(tmp_path, tools, "acme", "off")
    assert got["error"] == "ConfigError", got
    message = str(got["message"])
    assert "apt-get install bubblewrap" in message
    assert "POMBOLT_BUILD_SANDBOX=off applies only to the local CLI tenant 'local', not to tenant 'acme'" in message


def test_the_local_cli_is_refused_too_but_told_how_to_opt_out(tmp_path: Path, tools: Path) -> None:
    got = _build_without_bwrap(tmp_path, tools, "local", "required")
    assert got["error"] == "ConfigError", got
    assert "apt-get install bubblewrap" in str(got["message"])
    assert "set POMBOLT_BUILD_SANDBOX=off" in str(got["message"])


def test_the_local_cli_may_opt_out_explicitly(tmp_path: Path, tools: Path) -> None:
    assert _build_without_bwrap(tmp_path, tools, "local", "off") == {"built": ["img/dot.bin", "index.html"]}


def test_the_registry_proxy_refuses_internal_addresses_in_every_spelling() -> None:
    import ipaddress

    from tasks._build.registry_proxy import internal_address

    inward = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"]
    inward += ["::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"]
    inward += ["2002:7f00:1::"]  # 6to4 of 127.0.0.1
    for ip in inward:
        assert internal_address(ipaddress.ip_address(ip)), ip
    for ip in ["104.16.0.35", "203.0.113.80", "2606:4700::6810:23"]:
        assert not internal_address(ipaddress.ip_address(ip)), ip


def test_the_registry_setting_carries_no_credentials() -> None:
    from pydantic import ValidationError

    from core.settings import BuildSettings

    assert BuildSettings(registry="https://npm.example.org/").registry == "https://npm.example.org/"
    with pytest.raises(ValidationError, match="must not carry credentials"):
        BuildSettings(registry="https://user:npm_secret@npm.example.org/")
    with pytest.raises(ValidationError, match="http:// or https://"):
        BuildSettings(registry="file:///srv/npm")
