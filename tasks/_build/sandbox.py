"""The bubblewrap sandbox npm builds of generated code run in (DESIGN §6).

Generated code — its ``package.json``, lockfile, ``.npmrc`` and build script — is hostile by default. Every
step of a build (dependency install, then ``npm run build``) runs as::

    bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session
          --hostname pombolt-build
          --ro-bind /usr /usr  --symlink usr/bin /bin  --symlink usr/lib /lib  ... (the host's /bin, /sbin, /lib*)
          --ro-bind NODE /run/pombolt-tools/node  --symlink NPM_CLI /run/pombolt-tools/npm
          [--ro-bind NPM_DIR NPM_DIR]                        (only when npm lives outside /usr)
          --ro-bind-try /etc/ssl/certs /etc/ssl/certs        (install with network only: TLS to the registry)
          --proc /proc  --dev /dev  --size TMP --tmpfs /dev/shm  --size TMP --tmpfs /tmp
          --bind WORK WORK                                   (the work dir, the only writable host path)
          [--ro-bind PROXY_DIR /run/pombolt]                 (install with network only: the proxy socket)
          --remount-ro /dev  --remount-ro /
          --chdir WORK/src  --clearenv  --setenv PATH ... --setenv HOME WORK/home ...
          -- /bin/sh -c 'echo 1000 >/proc/self/oom_score_adj; exec "$@"' sh
             prlimit --cpu=S:S+5 --nproc=P --fsize=F --core=0 --
             [node -e FORWARDER_JS /run/pombolt/registry.sock]  (install with network only)
             npm ci --ignore-scripts   |   npm run build --ignore-scripts

so a build has:

- **no network**: its own network namespace holds only its own loopback — no route to the host's loopback,
  private ranges or 169.254.169.254, no DNS. Dependency install alone may reach the npm registry, through
  :class:`~tasks._build.registry_proxy.RegistryProxy`: an allow-listing proxy in the worker, on a Unix socket
  bound into the sandbox, that opens only ``CONNECT <registry host>:<port>`` (or plain HTTP to an ``http://``
  registry), refuses everything else and refuses registry addresses in loopback/private/link-local/metadata
  ranges (:func:`~tasks._build.registry_proxy.internal_address`, checked on the address it connects to: no DNS
  rebinding inward) unless the registry URL itself names one (only the operator sets it). Inside the sandbox a
  few lines of node (:data:`~tasks._build.registry_proxy.FORWARDER_JS`) listen on the sandbox's own 127.0.0.1
  and hand each connection to that socket; npm gets that as its proxy. ``install_network=false`` (or
  ``offline``) drops even that: install then works only from what is in the project (``file:`` tarballs) or
  fails.
- **a filesystem view of the work dir (read-write) and the toolchain (read-only)**: /usr, /bin, /lib*, node
  and npm. No /etc (no passwd, no resolv.conf), no /work, no data dir, no $HOME, no /root; a private /tmp and
  /dev/shm of bounded size; /proc is the sandbox's own (its pid and network namespaces: ``/proc/net/tcp``
  lists nothing of the host, ``/proc/1`` is bwrap); the root and /dev are read-only.
- **an environment without any token**: ``--clearenv`` plus the allow-list of :func:`tasks._build.env.build_env`.
- **limits**: ``prlimit`` inside the sandbox for CPU seconds per process (SIGXCPU, then SIGKILL 5 s later),
  processes (RLIMIT_NPROC, counted in the sandbox's own user namespace), file size (RLIMIT_FSIZE) and no
  core dumps; a :class:`~tasks._build.watchdog.Watchdog` thread in the worker for memory (the summed RSS of
  every process of the sandbox, polled) and disk (the work dir's size); the caller's time limit and output cap.
  RLIMIT_AS and RLIMIT_DATA are not used: node 20 crashes at start under any of them (V8 reserves its pointer
  cage).
- **no lifecycle scripts**: ``--ignore-scripts`` for install and build (the ``build`` script itself still
  runs; ``pre``/``post`` scripts and every dependency's ``install`` scripts do not) unless
  ``POMBOLT_BUILD_LIFECYCLE_SCRIPTS=true``; the project's own ``.npmrc`` is not used (it could point npm at
  another registry, shell or git binary).

bwrap runs unprivileged (a user namespace, no capabilities); when the worker is root it is started as the
build user ``nobody`` (65534), so even a kernel-level escape from the namespaces lands as ``nobody``.

Where bwrap is missing, builds are refused with a :class:`~core.errors.ConfigError` naming
``apt-get install bubblewrap``; only the local CLI tenant (``local``) may opt out with
``POMBOLT_BUILD_SANDBOX=off``. Not covered: a seccomp filter (the kernel's whole syscall surface is reachable
from inside the namespaces), and memory that no process maps (a memfd written but never mapped) escapes the
RSS watchdog; the time limit still ends it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.settings import BuildSettings
from tasks._build.registry_proxy import FORWARDER_JS, PROXY_SOCKET

__all__ = [
    "BUILD_GID",
    "BUILD_UID",
    "INSTALL_HINT",
    "LOCAL_TENANT",
    "Sandbox",
    "choose_sandbox",
    "find_bwrap",
    "probe",
    "switches_user",
]

#: The local single-user CLI tenant: the only one that may build without the sandbox.
LOCAL_TENANT = "local"
#: What to install where bwrap is missing.
INSTALL_HINT = "apt-get install bubblewrap"
#: The unprivileged user builds run as when Pom-Bolt runs as root.
BUILD_UID = BUILD_GID = 65534
_SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
_TOOL_BIN = "/run/pombolt-tools"


def switches_user() -> bool:
    """Whether builds run as the unprivileged build user (only possible when Pom-Bolt runs as root)."""
    return os.geteuid() == 0


def find_bwrap(path: str | None = None) -> str | None:
    """The ``bwrap`` binary on ``path`` (default the process's ``PATH``), or None."""
    return shutil.which("bwrap", path=path if path is not None else os.environ.get("PATH", _SANDBOX_PATH))


def _missing(tool: str, tenant_id: str | None, build: BuildSettings) -> ConfigError:
    who = f"tenant '{tenant_id}'" if tenant_id else "a build without a tenant"
    if tenant_id == LOCAL_TENANT:
        escape = (
            "; or, for the local CLI only, set POMBOLT_BUILD_SANDBOX=off to build without the sandbox "
            "(generated code then runs with the network and the files of the build user)"
        )
    elif build.sandbox == "off":
        escape = f"; POMBOLT_BUILD_SANDBOX=off applies only to the local CLI tenant '{LOCAL_TENANT}', not to {who}"
    else:
        escape = ""
    package = "bubblewrap" if tool == "bwrap" else "util-linux"
    return ConfigError(
        f"builds run generated code in a bubblewrap sandbox, and {tool} is not installed (not found on PATH), "
        f"so this build of {who} is refused; install it (apt-get install {package}){escape}"
    )


@dataclass(frozen=True)
class Sandbox:
    """How one build's steps are wrapped: the binaries, the toolchain binds and the limits."""

    bwrap: str
    prlimit: str
    node: str
    npm: str
    settings: BuildSettings
    run_as_build_user: bool
    extra_binds: tuple[str, ...] = field(default=())

    @property
    def path(self) -> str:
        """``PATH`` inside the sandbox: node and npm as the worker found them, then the system's."""
        return f"{_TOOL_BIN}:{_SANDBOX_PATH}"

    def popen_kwargs(self) -> dict[str, Any]:
        """How to start bwrap: as the build user when root (bwrap then runs unprivileged in a user namespace)."""
        if self.run_as_build_user:
            return {"user": BUILD_UID, "group": BUILD_GID, "extra_groups": [], "umask": 0o077}
        return {"umask": 0o077}

    def argv(
        self,
        command: Sequence[str],
        *,
        work: Path,
        cwd: Path,
        env: Mapping[str, str],
        proxy_dir: Path | None = None,
    ) -> list[str]:
        """The full bwrap command line that runs ``command`` in ``cwd`` with exactly ``env``."""
        tmp_bytes = str(self.settings.tmp_mb * 1024 * 1024)
        args = [
            self.bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "pombolt-build",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for path in self.extra_binds:
            args += ["--ro-bind", path, path]
        args += ["--ro-bind", self.node, f"{_TOOL_BIN}/node", "--symlink", self.npm, f"{_TOOL_BIN}/npm"]
        if proxy_dir is not None:
            args += ["--ro-bind-try", "/etc/ssl/certs", "/etc/ssl/certs"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--size", tmp_bytes, "--tmpfs", "/dev/shm", "--size", tmp_bytes, "--tmpfs", "/tmp"]
        args += ["--bind", str(work), str(work)]
        if proxy_dir is not None:
            args += ["--ro-bind", str(proxy_dir), str(Path(PROXY_SOCKET).parent)]
        args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", str(cwd), "--clearenv"]
        for name, value in env.items():
            args += ["--setenv", name, value]
        cpu = self.settings.cpu_seconds
        limited = [
            self.prlimit,
            f"--cpu={cpu}:{cpu + 5}",
            f"--nproc={self.settings.max_processes}",
            f"--fsize={self.settings.max_file_bytes}",
            "--core=0",
            "--",
        ]
        if proxy_dir is not None:
            limited += [f"{_TOOL_BIN}/node", "-e", FORWARDER_JS, PROXY_SOCKET]
        # the OOM killer takes a build before anything else on the machine
        shell = ["/bin/sh", "-c", 'echo 1000 >/proc/self/oom_score_adj 2>/dev/null; exec "$@"', "sh"]
        return [*args, "--", *shell, *limited, *command]


def _tool_root(real: str) -> str | None:
    """The folder to bind for a tool that lives outside the system dirs (npm: its package folder)."""
    if real.startswith(("/usr/", "/bin/", "/lib/", "/lib64/", "/sbin/")):
        return None
    parts = Path(real).parts
    if "node_modules" in parts:
        index = len(parts) - 1 - parts[::-1].index("node_modules")
        if index + 1 < len(parts):
            return str(Path(*parts[: index + 2]))  # .../node_modules/npm
    return real


def choose_sandbox(
    build: BuildSettings, tenant_id: str | None, *, search_path: str, node: str, npm: str
) -> Sandbox | None:
    """The sandbox a build must run in, or None when the local CLI opted out.

    Args:
        build: The sandbox settings.
        tenant_id: Whose build this is; only ``local`` may opt out with ``sandbox='off'``.
        search_path: ``PATH`` to find bwrap and prlimit on (the build's tools ``PATH``).
        node: The node binary the build uses (found on ``search_path``).
        npm: The npm command the build uses.

    Raises:
        ConfigError: bwrap (or prlimit) is missing; :func:`probe` then says whether it works here.
    """
    if build.sandbox == "off" and tenant_id == LOCAL_TENANT:
        return None
    bwrap = find_bwrap(search_path)
    if bwrap is None:
        raise _missing("bwrap", tenant_id, build)
    prlimit = shutil.which("prlimit", path=search_path)
    if prlimit is None:
        raise _missing("prlimit", tenant_id, build)
    node_real, npm_real, prlimit_real = (os.path.realpath(p) for p in (node, npm, prlimit))
    for tool, real in (("node", node_real), ("prlimit", prlimit_real)):
        if not Path(real).is_file():
            raise ConfigError(f"{tool} resolves to {real}, which is not a file; install {tool} normally")
    binds = tuple(dict.fromkeys(b for b in (_tool_root(npm_real), _tool_root(prlimit_real)) if b is not None))
    return Sandbox(
        bwrap=bwrap,
        prlimit=prlimit_real,
        node=node_real,
        npm=npm_real,
        settings=build,
        run_as_build_user=switches_user(),
        extra_binds=binds,
    )


_probed: set[tuple[str, str, str, str, bool]] = set()
_probe_lock = threading.Lock()


def probe(sandbox: Sandbox, work: Path) -> None:
    """Run ``node -e 0`` in the sandbox (once per toolchain), so a machine that cannot sandbox says so clearly.

    Args:
        sandbox: The sandbox to try.
        work: A work dir the build user owns (the build's own, before its steps run).

    Raises:
        ConfigError: bwrap cannot make the sandbox here (no unprivileged user namespaces, say).
    """
    key = (sandbox.bwrap, sandbox.prlimit, sandbox.node, sandbox.npm, sandbox.run_as_build_user)
    with _probe_lock:
        if key in _probed:
            return
        argv = sandbox.argv(["node", "-e", "0"], work=work, cwd=work, env={"PATH": sandbox.path})
        try:
            done = subprocess.run(
                argv,
                env={"PATH": _SANDBOX_PATH},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60,
                check=False,
                **sandbox.popen_kwargs(),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"bubblewrap ({sandbox.bwrap}) could not be started: {exc}") from exc
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-500:]
            raise ConfigError(
                f"bubblewrap ({sandbox.bwrap}) cannot make a build sandbox on this machine ({said or 'no output'}; "
                f"exit {done.returncode}); it needs bubblewrap 0.8 or newer and unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, and on Ubuntu "
                "kernel.apparmor_restrict_unprivileged_userns=0)"
            )
        _probed.add(key)
