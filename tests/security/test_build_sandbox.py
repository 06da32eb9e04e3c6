"""The build sandbox under attack: real npm builds whose build scripts do what a hostile generation would.

Found at main: a generated app's ``build.js`` POSTed ``{"include_secrets": true}`` to the local Prefect API's
``/api/block_documents/filter`` and wrote the answer into ``dist/index.html``; its ``preinstall`` script ran.
Every test here runs such a build through :func:`tasks._build.npm.run_build` (as an API tenant, ``acme``)
and asserts the build either fails with a clear error or publishes nothing it should not have seen.
The build scripts report what they got into ``dist/index.html`` *and* on stdout, so an assertion can read
the output of a successful build and the log tail of a failed one.

bubblewrap is required: without ``bwrap`` every test here skips loudly, and fails under ``CI=true``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from core.errors import BuildFailed
from core.settings import BuildSettings, get_settings
from tasks._build.npm import BuildOutput, run_build
from tests.conftest import require_tool

TENANT = "acme"  # an API tenant: the sandbox is required, no opt-out
SECRET = "pombolt-sandbox-secret-7f3a9c"
TOKENS = {
    "GITHUB_TOKEN": "ghp_SANDBOXTOKEN00000000000000000000000001",
    "NETLIFY_AUTH_TOKEN": "nfp_SANDBOXTOKEN000000000000000000002",
    "OPENAI_API_KEY": "sk-SANDBOXTOKEN0000000000000000000000003",
    "POMBOLT_TEST_TOKEN": "pombolt-sandbox-token-4",
    "PREFECT_API_KEY": "pnu_SANDBOXTOKEN0000000000000000000005",
    "AWS_SECRET_ACCESS_KEY": "SANDBOXTOKENawsSecret00000000000000006",
}

# The report every attack script writes: dist/index.html and one line on stdout (for failed builds).
REPORT_JS = r"""
const fs = require('fs');
function report(found) {
  const text = JSON.stringify(found);
  fs.mkdirSync('dist', {recursive: true});
  fs.writeFileSync('dist/index.html', '<!doctype html><pre>' + text.replace(/</g, '&lt;') + '</pre>\n');
  console.log('REPORT ' + text);
}
const read = (p) => { try { return fs.readFileSync(p).toString('latin1'); } catch (e) { return 'ERR ' + e.code; } };
const list = (p) => { try { return fs.readdirSync(p); } catch (e) { return 'ERR ' + e.code; } };
"""


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_tool("node", "builds run generated build scripts with node")
    require_tool("npm", "builds install dependencies and run scripts with npm")
    require_tool("bwrap", "builds of generated code run in a bubblewrap sandbox (apt-get install bubblewrap)")


def _settings(**overrides: Any) -> BuildSettings:
    base: dict[str, Any] = {"sandbox": "required", "lifecycle_scripts": False, "install_network": True}
    return BuildSettings(**{**base, **overrides})


def _project(root: Path, build_js: str, *, scripts: dict[str, str] | None = None, **extra: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    package = {
        "name": "attack",
        "version": "1.0.0",
        "private": True,
        "scripts": {"build": "node build.js", **(scripts or {})},
        **extra,
    }
    (root / "package.json").write_text(json.dumps(package))
    (root / "build.js").write_text(REPORT_JS + build_js)
    return root


def _build(project: Path, *, timeout: float = 60, offline: bool = True, **settings: Any) -> BuildOutput:
    return run_build(project, timeout=timeout, offline=offline, tenant_id=TENANT, sandbox=_settings(**settings))


def _report(out: BuildOutput) -> dict[str, Any]:
    page = {f.path: f.content for f in out.files}["index.html"].decode()
    return json.loads(page.split("<pre>", 1)[1].rsplit("</pre>", 1)[0].replace("&lt;", "<"))


def _log_report(message: str) -> dict[str, Any]:
    line = next(line for line in message.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT ") :])


class _Counting(BaseHTTPRequestHandler):
    hits: list[str]
    body: bytes

    def _answer(self) -> None:
        self.hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _server(body: bytes, host: str = "127.0.0.1") -> Iterator[tuple[int, list[str]]]:
    """An HTTP server answering ``body`` to everything; yields its port and the requests it got."""
    hits: list[str] = []
    handler = type("Handler", (_Counting,), {"hits": hits, "body": body})
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()


def _host_ip() -> str | None:
    """This machine's own non-loopback address (the one a default route leaves from), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            ip = probe.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


CONNECT_JS = r"""
const net = require('net');
const dns = require('dns');
const found = {connect: {}, dns: null, http: null};
const targets = __TARGETS__;
let pending = targets.length + 2;
const done = () => { if (--pending === 0) report(found); };
for (const [host, port] of targets) {
  const sock = net.connect({host, port, timeout: 3000});
  sock.on('connect', () => { found.connect[host + ':' + port] = 'CONNECTED'; sock.destroy(); done(); });
  sock.on('timeout', () => { found.connect[host + ':' + port] = 'TIMEOUT'; sock.destroy(); done(); });
  sock.on('error', (e) => { found.connect[host + ':' + port] = 'ERR ' + e.code; done(); });
}
dns.lookup('registry.npmjs.org', (err, address) => { found.dns = err ? 'ERR ' + err.code : address; done(); });
// the original attack: ask the Prefect API for every Block document, secrets included
fetch(__API__ + '/block_documents/filter', {method: 'POST', headers: {'content-type': 'application/json'},
                                               body: JSON.stringify({include_secrets: true})})
  .then((r) => r.text()).then((t) => { found.http = t; done(); })
  .catch((e) => { found.http = 'ERR ' + ((e.cause && e.cause.code) || e.message); done(); });
"""


def test_the_original_attack_gets_no_block_secret_and_reaches_no_host_port(tmp_path: Path) -> None:
    """build.js POSTs include_secrets to a Prefect-like API on the host's loopback, and tries the host's own
    address, IPv6 loopback and the cloud metadata address: every connection fails, nothing is published."""
    answer = json.dumps([{"name": "netlify", "data": {"token": SECRET}}]).encode()
    with _server(answer) as (port, hits), _server(answer, host="0.0.0.0") as (any_port, any_hits):
        targets = [["127.0.0.1", port], ["localhost", port], ["::1", port], ["169.254.169.254", 80]]
        host_ip = _host_ip()
        if host_ip:
            targets.append([host_ip, any_port])
        js = CONNECT_JS.replace("__TARGETS__", json.dumps(targets)).replace(
            "__API__", json.dumps(f"http://127.0.0.1:{port}/api")
        )
        out = _build(_project(tmp_path / "p", js))
    found = _report(out)
    assert hits == [] and any_hits == [], "the build reached a server of the host"
    assert SECRET not in json.dumps(found)
    assert found["http"].startswith("ERR "), found["http"]
    assert found["dns"].startswith("ERR "), "no DNS inside the sandbox"
    assert len(found["connect"]) == len(targets)
    for target, got in found["connect"].items():
        assert got.startswith("ERR ") and got != "ERR ETIMEDOUT", (target, got)  # refused at once: no route


def test_files_outside_the_work_dir_are_not_there(tmp_path: Path) -> None:
    secret_dir = tmp_path / "outside"
    secret_dir.mkdir()
    (secret_dir / "token.txt").write_text(SECRET)
    data_dir = get_settings().data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "sandbox-canary.txt").write_text(SECRET)
    reads = [
        str(secret_dir / "token.txt"),
        str(data_dir / "sandbox-canary.txt"),
        "/etc/passwd",
        "/etc/shadow",
        "/etc/hostname",
        "/root/.bashrc",
        os.path.expanduser("~/.netrc"),
        str(Path(__file__).resolve()),  # the repository (under /work here)
        "/proc/1/environ",
    ]
    writes = ["/usr/pombolt-x", "/pombolt-x", "/etc/pombolt-x", "/dev/pombolt-x", str(secret_dir / "evil.txt")]
    js = f"""
const found = {{reads: {{}}, writes: {{}}, root: list('/'), work: list('/work'), tmp: list('/tmp')}};
for (const p of {json.dumps(reads)}) found.reads[p] = read(p);
for (const p of {json.dumps(writes)}) {{
  try {{ fs.writeFileSync(p, 'x'); found.writes[p] = 'written'; }} catch (e) {{ found.writes[p] = 'ERR ' + e.code; }}
}}
report(found);
"""
    out = _build(_project(tmp_path / "p", js))
    found = _report(out)
    assert SECRET not in json.dumps(found)
    for path in reads[:-1]:
        assert found["reads"][path] == "ERR ENOENT", (path, found["reads"][path][:200])
    assert found["reads"]["/proc/1/environ"].split("\0")[:1] == ["PATH=/usr/local/bin:/usr/bin:/bin"]  # bwrap's
    for path, got in found["writes"].items():
        assert got.startswith("ERR "), (path, got)
    assert not (secret_dir / "evil.txt").exists()
    assert found["work"] == "ERR ENOENT"
    assert set(found["root"]) <= {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "dev", "proc", "tmp", "run"}
    assert all(name.startswith("pombolt-") for name in found["tmp"]), found["tmp"]  # a private /tmp


def test_proc_shows_only_the_sandbox(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port_hex = f":{listener.getsockname()[1]:04X}"
        js = r"""
const found = {tcp: read('/proc/net/tcp'), tcp6: read('/proc/net/tcp6'), unix: read('/proc/net/unix'),
               cmdlines: {}, mounts: read('/proc/self/mounts')};
for (const pid of list('/proc').filter((n) => /^\d+$/.test(n))) {
  found.cmdlines[pid] = read('/proc/' + pid + '/cmdline').split('\0').join(' ');
}
report(found);
"""
        out = _build(_project(tmp_path / "p", js))
    found = _report(out)
    for table in ("tcp", "tcp6"):
        rows = [row for row in found[table].splitlines()[1:] if row.strip()]
        assert rows == [] or found[table].startswith("ERR "), f"/proc/net/{table} lists sockets: {rows[:3]}"
        assert port_hex not in found[table]
    cmdlines = " ".join(found["cmdlines"].values())
    assert "pytest" not in cmdlines and str(os.getpid()) not in found["cmdlines"]
    assert len(found["cmdlines"]) < 12, found["cmdlines"]  # bwrap, sh, npm, node: nothing of the host
    assert "/work" not in found["mounts"]


def test_the_environment_holds_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    js = r"""
const found = {env: process.env, environ: {}};
for (const pid of list('/proc').filter((n) => /^\d+$/.test(n))) found.environ[pid] = read('/proc/' + pid + '/environ');
report(found);
"""
    out = _build(_project(tmp_path / "p", js))
    found = _report(out)
    text = json.dumps(found)
    for name, value in TOKENS.items():
        assert value not in text and name not in found["env"], name
    assert not [k for k in found["env"] if k.startswith(("POMBOLT_", "PREFECT_", "AWS_", "GITHUB_"))]
    assert found["env"]["HOME"].endswith("/home") and found["env"]["CI"] == "true"


def _tarball(name: str, version: str, files: dict[str, str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, text in {
            "package.json": json.dumps(
                {"name": name, "version": version, **json.loads(files.pop("package.json", "{}"))}
            ),
            **files,
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{path}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _integrity(blob: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()


def test_lifecycle_scripts_do_not_run(tmp_path: Path) -> None:
    """preinstall/postinstall/prebuild of the project and the install script of a dependency: none runs
    (and with POMBOLT_BUILD_LIFECYCLE_SCRIPTS=true they all would — the control)."""
    marker = "require('fs').writeFileSync('{}.ran', 'x')"
    lib = _tarball(
        "evil-dep",
        "1.0.0",
        {
            "package.json": json.dumps(
                {"scripts": {"install": 'node -e "' + marker.format("../../dep-install") + '"'}}
            ),
            "index.js": "module.exports = 'dep';\n",
        },
    )
    js = r"""
const found = {ran: fs.readdirSync('.').filter((n) => n.endsWith('.ran')), dep: require('evil-dep')};
report(found);
"""

    def project(root: Path) -> Path:
        scripts = {
            name: f'node -e "{marker.format(name)}"'
            for name in ("preinstall", "install", "postinstall", "prepare", "prebuild")
        }
        proj = _project(root, js, scripts=scripts, dependencies={"evil-dep": "file:evil-dep-1.0.0.tgz"})
        (proj / "evil-dep-1.0.0.tgz").write_bytes(lib)
        lock = {
            "name": "attack",
            "version": "1.0.0",
            "lockfileVersion": 3,
            "requires": True,
            "packages": {
                "": {
                    "name": "attack",
                    "version": "1.0.0",
                    "hasInstallScript": True,
                    "dependencies": {"evil-dep": "file:evil-dep-1.0.0.tgz"},
                },
                "node_modules/evil-dep": {
                    "version": "1.0.0",
                    "resolved": "file:evil-dep-1.0.0.tgz",
                    "integrity": _integrity(lib),
                    "hasInstallScript": True,
                },
            },
        }
        (proj / "package-lock.json").write_text(json.dumps(lock))
        return proj

    out = _build(project(tmp_path / "off"))
    assert out.steps == ["npm ci", "npm run build"]
    assert _report(out) == {"ran": [], "dep": "dep"}

    allowed = _build(project(tmp_path / "on"), lifecycle_scripts=True)
    assert sorted(_report(allowed)["ran"]) == sorted(
        ["preinstall.ran", "install.ran", "postinstall.ran", "prepare.ran", "prebuild.ran", "dep-install.ran"]
    ), "control: with the setting on, the same scripts run"


def _fails(project: Path, *, timeout: float = 60, **settings: Any) -> str:
    with pytest.raises(BuildFailed) as info:
        _build(project, timeout=timeout, **settings)
    return info.value.message


def test_a_fork_bomb_is_stopped_by_the_process_limit(tmp_path: Path) -> None:
    js = r"""
const cp = require('child_process');
for (let i = 0; i < 10000; i++) cp.spawn('sleep', ['60']);
"""
    message = _fails(_project(tmp_path / "p", js), timeout=30, max_processes=32)
    assert "more than 32 processes" in message and "POMBOLT_BUILD_MAX_PROCESSES" in message, message[:600]


def test_a_shell_fork_bomb_is_stopped(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "", scripts={"build": "sh -c 'b(){ b|b& }; b; sleep 2; exit 1'"})
    message = _fails(project, timeout=30, max_processes=32)
    assert "POMBOLT_BUILD_MAX_PROCESSES" in message, message[:600]


def test_a_memory_hog_is_stopped_by_the_memory_limit(tmp_path: Path) -> None:
    js = r"""
const hoard = [];
for (;;) hoard.push(Buffer.alloc(16 * 1024 * 1024, 1));
"""
    message = _fails(_project(tmp_path / "p", js), memory_mb=200)
    assert "used more than 200 MiB of memory" in message and "POMBOLT_BUILD_MEMORY_MB" in message, message[:600]


def test_a_cpu_hog_is_stopped_by_the_cpu_limit(tmp_path: Path) -> None:
    message = _fails(_project(tmp_path / "p", "for (;;) {}"), timeout=60, cpu_seconds=2)
    assert "more than 2 s of CPU time" in message and "POMBOLT_BUILD_CPU_SECONDS" in message, message[:600]


def test_a_huge_file_is_stopped_by_the_file_size_limit(tmp_path: Path) -> None:
    js = r"""
fs.mkdirSync('dist', {recursive: true});
const chunk = Buffer.alloc(1024 * 1024, 120);
for (let i = 0; i < 64; i++) fs.appendFileSync('dist/huge.bin', chunk);
"""
    message = _fails(_project(tmp_path / "p", js), max_file_bytes=8 * 1024 * 1024)
    assert "larger than 8388608 bytes" in message and "POMBOLT_BUILD_MAX_FILE_BYTES" in message, message[:600]


def test_filling_the_disk_is_stopped_by_the_disk_limit(tmp_path: Path) -> None:
    js = r"""
fs.mkdirSync('dist', {recursive: true});
const chunk = Buffer.alloc(4 * 1024 * 1024, 120);
for (let i = 0; i < 100000; i++) fs.writeFileSync('dist/f' + i, chunk);
"""
    message = _fails(_project(tmp_path / "p", js), timeout=60, max_disk_bytes=32 * 1024 * 1024)
    assert "wrote more than 33554432 bytes into its work dir" in message, message[:600]


def test_filling_tmp_is_bounded(tmp_path: Path) -> None:
    js = r"""
const chunk = Buffer.alloc(1024 * 1024, 120);
let written = 0;
try { for (let i = 0; i < 1000; i++) { fs.appendFileSync('/tmp/fill', chunk); written++; } }
catch (e) { console.error('tmp full: ' + e.code); process.exit(1); }
"""
    message = _fails(_project(tmp_path / "p", js), tmp_mb=16)
    assert "tmp full: ENOSPC" in message and "POMBOLT_BUILD_TMP_MB" in message, message[:600]


def test_a_flood_of_output_is_stopped(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "", scripts={"build": "yes flooding-the-build-log"})
    with pytest.raises(BuildFailed, match="printed more than 100000 bytes"):
        run_build(project, timeout=30, max_log_bytes=100_000, offline=True, tenant_id=TENANT, sandbox=_settings())


def test_an_output_folder_that_links_out_of_the_work_dir_is_refused(tmp_path: Path) -> None:
    """The sandbox cannot read the host, but the worker collects the output after it: ``dist`` as a symlink
    to a host folder must not make the worker publish that folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "index.html").write_text(SECRET)
    js = f"fs.symlinkSync({json.dumps(str(outside))}, 'dist');"
    message = _fails(_project(tmp_path / "p", js))
    assert "symlink" in message and SECRET not in message


# -- dependency install: the registry and nothing else --------------------------------------------------


class _Registry(BaseHTTPRequestHandler):
    """A tiny npm registry: packuments and tarballs (answers absolute-form proxy requests too)."""

    packages: dict[str, bytes]
    tarballs: dict[str, bytes]
    hits: list[str]

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.hits.append(path)
        body = self.packages.get(path.lstrip("/").replace("%2f", "/")) or self.tarballs.get(path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/octet-stream" if path in self.tarballs else "application/json")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _registry() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Registry", (_Registry,), {"packages": {}, "tarballs": {}, "hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    blob = _tarball("greet-lib", "1.2.3", {"index.js": "module.exports = () => 'hello from the registry';\n"})
    handler.tarballs["/greet-lib/-/greet-lib-1.2.3.tgz"] = blob
    handler.packages["greet-lib"] = json.dumps(
        {
            "name": "greet-lib",
            "dist-tags": {"latest": "1.2.3"},
            "versions": {
                "1.2.3": {
                    "name": "greet-lib",
                    "version": "1.2.3",
                    "dist": {
                        "tarball": f"{url}/greet-lib/-/greet-lib-1.2.3.tgz",
                        "integrity": _integrity(blob),
                    },
                }
            },
        }
    ).encode()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield url, hits
    finally:
        server.shutdown()
        server.server_close()


USE_DEP_JS = "report({dep: require('greet-lib')()});"


def test_install_reaches_the_configured_registry_and_the_build_does_not(tmp_path: Path) -> None:
    with _registry() as (url, hits):
        # the build step tries the same registry: no network there
        js = f"fetch('{url}/greet-lib').then(() => 'REACHED', () => 'blocked')"
        js += ".then((net) => report({net, dep: require('greet-lib')()}));"
        project = _project(tmp_path / "p", js, dependencies={"greet-lib": "^1.2.0"})
        out = _build(project, offline=False, registry=url + "/")
        assert out.steps == ["npm install", "npm run build"]
        assert _report(out) == {"net": "blocked", "dep": "hello from the registry"}
        assert "/greet-lib/-/greet-lib-1.2.3.tgz" in hits


def test_install_cannot_reach_anything_but_the_registry(tmp_path: Path) -> None:
    """A lockfile whose ``resolved`` URL points at another server (the host's loopback, metadata): refused by
    the proxy, with a message naming what was tried."""
    with _registry() as (url, _hits), _server(b"{}") as (other_port, other_hits):
        blob = _tarball("greet-lib", "1.2.3", {"index.js": "module.exports = () => 'x';\n"})
        for resolved in (f"http://127.0.0.1:{other_port}/greet-lib-1.2.3.tgz", "http://169.254.169.254/latest/x.tgz"):
            project = _project(
                tmp_path / f"p{len(other_hits)}{resolved[7:10]}", USE_DEP_JS, dependencies={"greet-lib": "1.2.3"}
            )
            lock = {
                "name": "attack",
                "version": "1.0.0",
                "lockfileVersion": 3,
                "requires": True,
                "packages": {
                    "": {"name": "attack", "version": "1.0.0", "dependencies": {"greet-lib": "1.2.3"}},
                    "node_modules/greet-lib": {"version": "1.2.3", "resolved": resolved, "integrity": _integrity(blob)},
                },
            }
            (project / "package-lock.json").write_text(json.dumps(lock))
            message = _fails(project, offline=False, registry=url + "/")
            host = urlsplit(resolved).netloc
            assert f"may reach only the npm registry {url}/ and tried {host}" in message, message[:800]
        assert other_hits == []


def test_install_with_the_default_registry_cannot_reach_the_host(tmp_path: Path) -> None:
    with _server(b"{}") as (port, hits):
        project = _project(tmp_path / "p", USE_DEP_JS, dependencies={"greet-lib": f"http://127.0.0.1:{port}/g.tgz"})
        message = _fails(project, offline=False)
        assert f"tried 127.0.0.1:{port}" in message, message[:800]
        assert hits == []


def test_offline_install_has_no_network_at_all(tmp_path: Path) -> None:
    with _registry() as (url, hits):
        project = _project(tmp_path / "p", USE_DEP_JS, dependencies={"greet-lib": "^1.2.0"})
        message = _fails(project, offline=False, registry=url + "/", install_network=False)
        assert "no network here" in message, message[:800]
        assert hits == []


def _registry_reachable() -> bool:
    try:
        socket.create_connection(("registry.npmjs.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


def test_install_from_the_public_registry_works_through_the_proxy(tmp_path: Path) -> None:
    if not _registry_reachable():
        pytest.skip("NETWORK NOT AVAILABLE: registry.npmjs.org:443 cannot be reached from this machine")
    project = _project(tmp_path / "p", "report({n: require('is-number')(5)});", dependencies={"is-number": "7.0.0"})
    out = _build(project, offline=False, timeout=120)
    assert _report(out) == {"n": True}


def test_the_sandbox_command_line(tmp_path: Path) -> None:
    """What the sandbox is, in one place: the flags every step runs with."""
    from tasks._build.sandbox import choose_sandbox

    sandbox = choose_sandbox(
        _settings(),
        TENANT,
        search_path=os.environ["PATH"],
        node=require_tool("node", "x"),
        npm=require_tool("npm", "x"),
    )
    assert sandbox is not None
    argv = sandbox.argv(["npm", "run", "build"], work=tmp_path, cwd=tmp_path / "src", env={"PATH": sandbox.path})
    joined = " ".join(argv)
    for flag in (
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--proc /proc",
        f"--bind {tmp_path} {tmp_path}",
        "--remount-ro /",
        "--ro-bind /usr /usr",
        "--nproc=",
        "--fsize=",
        "--cpu=",
    ):
        assert flag in joined, flag
    assert "/etc" not in joined and "/work" not in joined.replace(str(tmp_path), "") and "--share-net" not in joined
