"""The git command line as the Git repository Blocks use it (local bare repositories, any Git remote).

git runs with an isolated environment (no system or user config, ``HOME`` in a temporary folder, no
prompts), so nothing on the machine changes modes, line endings or identities. A commit is built without a
work tree:

1. every blob goes in with one ``git fast-import`` (it skips objects the repository already has);
2. a throw-away index (``GIT_INDEX_FILE``) is filled with ``git update-index -z --index-info`` from the
   manifest alone — so removed files disappear — and ``git write-tree`` turns it into a tree;
3. when the tree equals the branch head's, nothing is committed; otherwise ``git commit-tree`` with the
   head as parent. Moving the branch is the caller's part (``update-ref`` locally, ``push`` to a remote).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState
from core.errors import ConfigError, ProviderError, ProviderUnavailable
from core.snapshots import Manifest, SnapshotStore

__all__ = ["NO_GIT", "Git", "commit_snapshot", "publish_result"]

GIT_TIMEOUT = 120.0
NO_GIT = "git is not installed or not on PATH; install git to use Git repositories"


class Git:
    """Runs git against one bare repository with an isolated environment, counting invocations.

    Attributes:
        git_dir: The bare repository.
        home: A private folder: git's ``HOME`` and working directory.
        env: The environment every git call gets (callers may add ``GIT_CONFIG_*`` entries).
        calls: git invocations so far.
    """

    def __init__(self, provider: str, git_dir: Path, home: Path, author: tuple[str, str]) -> None:
        self.provider = provider
        self.git_dir = git_dir
        self.home = home
        self.calls = 0
        inherited = {k: v for k in ("PATH", "TMPDIR", "SYSTEMROOT") if (v := os.environ.get(k))}
        self.env = {
            **inherited,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": author[0],
            "GIT_COMMITTER_EMAIL": author[1],
        }

    def run(
        self, *args: str, stdin: bytes | None = None, index: Path | None = None, bare: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``git [--git-dir DIR] ARGS``; a non-zero exit becomes a :class:`ProviderError`."""
        done = self.try_run(*args, stdin=stdin, index=index, bare=bare)
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip()[-800:] or f"exit code {done.returncode}"
            raise ProviderError(self.provider, f"git {args[0]} failed in {self.git_dir}: {detail}")
        return done

    def try_run(
        self, *args: str, stdin: bytes | None = None, index: Path | None = None, bare: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git and return the completed process whatever its exit code."""
        argv = ["git", f"--git-dir={self.git_dir}", *args] if bare else ["git", *args]
        env = {**self.env, "GIT_INDEX_FILE": str(index)} if index else self.env
        self.calls += 1
        try:
            return subprocess.run(
                argv, input=stdin, capture_output=True, env=env, cwd=self.home, timeout=GIT_TIMEOUT, check=False
            )
        except FileNotFoundError as exc:
            raise ConfigError(NO_GIT) from exc
        except subprocess.TimeoutExpired as exc:
            raise ProviderUnavailable(
                self.provider, f"git {args[0]} took longer than {GIT_TIMEOUT:.0f} s in {self.git_dir}"
            ) from exc

    def out(self, *args: str, stdin: bytes | None = None, index: Path | None = None) -> str:
        """Run git and return its stripped standard output."""
        return self.run(*args, stdin=stdin, index=index).stdout.decode().strip()

    def resolve(self, rev: str) -> str | None:
        """The object id ``rev`` names, or None when it does not exist."""
        done = self.try_run("rev-parse", "--verify", "--quiet", rev)
        if done.returncode != 0:
            return None
        return done.stdout.decode().strip() or None

    def init_bare(self, branch: str) -> None:
        """``git init --bare -b BRANCH`` the repository folder."""
        self.run("init", "--quiet", "--bare", "-b", branch, str(self.git_dir), bare=False)


def write_tree(git: Git, snapshots: SnapshotStore, manifest: Manifest) -> str:
    """Store every blob of the snapshot and build its tree from scratch; return the tree id."""
    shas = list(dict.fromkeys(e.sha256 for e in manifest.files))
    oids: dict[str, str] = {}
    if shas:
        paths = {e.sha256: e.path for e in manifest.files}
        stream = bytearray()
        for mark, sha in enumerate(shas, start=1):
            data = snapshots.read_blob(sha, path=paths[sha])
            stream += b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n"
        marks = git.home / "marks"
        git.run("fast-import", "--quiet", f"--export-marks={marks}", stdin=bytes(stream))
        by_mark = dict(line.split(" ", 1) for line in marks.read_text().split("\n") if line)
        oids = {sha: by_mark[f":{mark}"] for mark, sha in enumerate(shas, start=1)}
    index = git.home / "index"
    entries = b"".join(f"{e.mode} {oids[e.sha256]}\t{e.path}".encode() + b"\0" for e in manifest.files)
    git.run("update-index", "-z", "--index-info", stdin=entries, index=index)
    return git.out("write-tree", index=index)


def commit_snapshot(git: Git, snapshots: SnapshotStore, request: PublishRequest, old: str | None) -> tuple[str, bool]:
    """Commit the request's snapshot on top of ``old`` unless its tree equals ``old``'s.

    Returns:
        The commit the branch should point at, and whether it is a new commit.
    """
    tree = write_tree(git, snapshots, snapshots.manifest(request.snapshot_id))
    if old is not None and git.resolve(f"{old}^{{tree}}") == tree:
        return old, False
    parents = ["-p", old] if old else []
    return git.out("commit-tree", tree, *parents, "-F", "-", stdin=request.commit_message().encode()), True


def publish_result(
    request: PublishRequest,
    state: RepositoryState,
    *,
    repository_id: str,
    url: str,
    commit: tuple[str, bool],
    created: bool,
    git: Git,
    extra: dict[str, str],
) -> PublishResult:
    """The result of a publish made with git: one write when a commit was made, git calls as requests."""
    sha, committed = commit
    return PublishResult(
        repository_url=url,
        commit_sha=sha,
        committed=committed,
        created=created,
        state=RepositoryState(
            repository_id=repository_id,
            url=url,
            created_by_run=request.run_id if created else state.created_by_run,
            extra={**state.extra, **extra},
        ),
        requests=git.calls,
        writes=1 if committed else 0,
    )
