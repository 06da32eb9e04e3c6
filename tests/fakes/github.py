"""A stateful fake GitHub REST API backed by real bare Git repositories (git plumbing), so SHAs are real.

Covers what Pom-Bolt calls: ``GET /user``, ``GET /orgs/{org}``, repository get/create/delete, Git refs
get/create/update (fast-forward unless ``force``), blobs, trees (``base_tree``, inline ``content``,
``sha``, ``sha: null`` deletions), commits, trees read and the Contents API ``PUT`` (the only way to
make the first commit of an empty repository). Like GitHub, an empty repository answers 409
"Git Repository is empty." on the Git data API, ``auto_init`` makes an "Initial commit" with a README,
and a non-fast-forward ref update is 422. Response bodies are filled from the contract's schemas
(every required field), so Prism in front finds nothing to complain about.

GitHub Pages (legacy, branch source): ``GET/POST/DELETE /repos/{o}/{r}/pages`` and
``GET .../pages/builds/latest``. A build starts whenever the source branch's head differs from the last
build's commit (checked on each Pages request); it stays ``building`` for ``pages_build_polls`` reads of the
latest build, then is ``built`` (or ``errored`` with ``pages_fail_next``'s message). The built commit is
served publicly at ``<fake>/pages/<owner>/<repo>/<path>`` (the Pages ``html_url``; ``/`` serves
``index.html``). Like github.com on a free plan, Pages on a private repository is refused (422) unless
``pages_on_private`` is set.

``clone_url(full_name)`` gives a ``file://`` URL of the bare repository for ``git clone``.
Hook ``before_update_ref`` (called once, under the lock, before a ref update) lets a test move a branch
at the worst moment.
"""

from __future__ import annotations

import base64
import itertools
import json
import mimetypes
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tests.fakes.base import FakeService, Request, Response, route
from tests.fakes.prism import contracts_dir

__all__ = ["FakeGitHub", "FakePages", "FakeRepo"]

_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_EMPTY = "Git Repository is empty."


@cache
def _spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((contracts_dir() / "github.openapi.json").read_text())
    return data


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = _spec()
        for part in schema["$ref"].split("/")[1:]:
            node = node[part]
        schema = node
    return schema


def _skeleton(schema: dict[str, Any], base: str) -> Any:
    """A value that satisfies ``schema``'s required fields (dummy but well-formed)."""
    schema = _resolve(schema)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return _skeleton(schema[key][0], base)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = _skeleton(part, base)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    if schema.get("nullable"):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _skeleton(props.get(name, {}), base) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer" or kind == "number":
        return 0
    if kind == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "uri":
        return base
    if fmt == "date-time":
        return "2026-01-01T00:00:00Z"
    if fmt == "email":
        return "fake@example.com"
    return "x"


def _response_schema(path: str, method: str, status: str = "200") -> dict[str, Any]:
    op = _spec()["paths"][path][method]
    response = _resolve(op["responses"][status])
    return _resolve(response["content"]["application/json"]["schema"])


@dataclass
class FakeRepo:
    """One repository of the fake: metadata plus a bare repository on disk."""

    id: int
    owner: str
    name: str
    description: str
    private: bool
    git_dir: Path
    default_branch: str = "main"

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"


@dataclass
class FakePagesBuild:
    """One Pages build: the commit it builds, its status and how many reads it stays ``building``."""

    commit: str
    status: str
    polls_left: int = 0
    error: str | None = None


@dataclass
class FakePages:
    """The Pages site of one repository (legacy build from a branch)."""

    branch: str
    path: str = "/"
    builds: list[FakePagesBuild] = field(default_factory=list)

    def served_commit(self) -> str | None:
        """The commit of the newest ``built`` build (what visitors see)."""
        done = [b.commit for b in self.builds if b.status == "built"]
        return done[-1] if done else None


class FakeGitHub(FakeService):
    """Fake GitHub: users by token, organisations, repositories in bare Git repositories."""

    name = "fake-github"
    auth_schemes = ("Bearer", "token")

    def __init__(self, *, users: dict[str, str], orgs: set[str] | None = None, root: Path | None = None) -> None:
        """Create the fake (not started).

        Args:
            users: token -> login.
            orgs: Organisation logins every user may create repositories in.
            root: Folder for the bare repositories (default: a new temporary folder, removed on stop).
        """
        super().__init__(tokens=set(users))
        self.users = dict(users)
        self.orgs = set(orgs or ())
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="fake-github-"))
        self.repos: dict[str, FakeRepo] = {}
        self._ids = itertools.count(1000)
        self.before_update_ref: Callable[[FakeRepo], None] | None = None
        self.pages: dict[int, FakePages] = {}  # repository id -> its Pages site
        self.pages_on_private = False
        self.pages_build_polls = 0
        self.pages_fail_next: str | None = None

    def stop(self) -> None:
        """Stop serving and remove the temporary repositories."""
        super().stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- git plumbing ------------------------------------------------------------------------------
    def git(self, repo: FakeRepo, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
        """Run git in a repository; raise on failure."""
        done = self._git(repo, *args, stdin=stdin, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def _git(
        self, repo: FakeRepo, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        base = {
            "PATH": os.environ.get("PATH", ""),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "HOME": str(self.root),
            "LC_ALL": "C",
        }
        return subprocess.run(
            ["git", f"--git-dir={repo.git_dir}", *args],
            input=stdin,
            capture_output=True,
            env={**base, **(env or {})},
            timeout=60,
            check=False,
        )

    def head(self, repo: FakeRepo, branch: str) -> str | None:
        """The commit a branch points at, or None."""
        done = self._git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        return done.stdout.decode().strip() or None if done.returncode == 0 else None

    def _is_empty(self, repo: FakeRepo) -> bool:
        return not self.git(repo, "for-each-ref", "--count=1").strip()

    def _write_tree(self, repo: FakeRepo, files: dict[str, tuple[str, str]]) -> str:
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            lines = b"".join(f"{m} {s}\t{p}".encode() + b"\0" for p, (m, s) in sorted(files.items()))
            self.git(repo, "update-index", "-z", "--index-info", stdin=lines, env=index)
            return self.git(repo, "write-tree", env=index).strip()

    def _files(self, repo: FakeRepo, tree: str) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for record in self.git(repo, "ls-tree", "-r", "-z", tree).split("\0"):
            if record:
                meta, path = record.split("\t", 1)
                mode, _, sha = meta.split(" ")
                out[path] = (mode, sha)
        return out

    def _commit(self, repo: FakeRepo, tree: str, parents: list[str], message: str, who: dict[str, str]) -> str:
        env = {
            "GIT_AUTHOR_NAME": who.get("name", "x"),
            "GIT_AUTHOR_EMAIL": who.get("email", "x@example.com"),
            "GIT_COMMITTER_NAME": who.get("name", "x"),
            "GIT_COMMITTER_EMAIL": who.get("email", "x@example.com"),
        }
        if who.get("date"):
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = who["date"]
        args = [a for p in parents for a in ("-p", p)]
        return self.git(repo, "commit-tree", tree, *args, stdin=message.encode(), env=env).strip()

    # --- test helpers -------------------------------------------------------------------------------
    def add_repo(self, owner: str, name: str, *, description: str = "", auto_init: bool = True) -> FakeRepo:
        """Create a repository directly (as if someone made it on GitHub)."""
        repo = FakeRepo(next(self._ids), owner, name, description, True, self.root / owner / f"{name}.git")
        repo.git_dir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(repo.git_dir)], check=True)
        if auto_init:
            blob = self.git(repo, "hash-object", "-w", "--stdin", stdin=f"# {name}\n".encode()).strip()
            tree = self._write_tree(repo, {"README.md": ("100644", blob)})
            sha = self._commit(repo, tree, [], "Initial commit", {"name": "GitHub", "email": "noreply@github.com"})
            self.git(repo, "update-ref", "refs/heads/main", sha)
        with self.lock:
            self.repos[repo.full_name.lower()] = repo
        return repo

    def commit_files(self, repo: FakeRepo, branch: str, files: dict[str, bytes], message: str) -> str:
        """Commit ``files`` (added on top of the head's tree) to ``branch``, as another user would."""
        with self.lock:
            head = self.head(repo, branch)
            tree_files = self._files(repo, head) if head else {}
            for path, data in files.items():
                tree_files[path] = ("100644", self.git(repo, "hash-object", "-w", "--stdin", stdin=data).strip())
            tree = self._write_tree(repo, tree_files)
            sha = self._commit(repo, tree, [head] if head else [], message, {"name": "someone"})
            self.git(repo, "update-ref", f"refs/heads/{branch}", sha)
            return sha

    def clone_url(self, full_name: str) -> str:
        """A ``file://`` URL ``git clone`` can read."""
        return self.repos[full_name.lower()].git_dir.as_uri()

    def history(self, full_name: str, branch: str = "main") -> list[str]:
        """Commits of a branch, newest first."""
        repo = self.repos[full_name.lower()]
        return self.git(repo, "rev-list", f"refs/heads/{branch}").split()

    # --- bodies -----------------------------------------------------------------------------------
    def error_body(self, status: int, message: str) -> Any:
        """GitHub's error shape."""
        return {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)}

    def _api(self, path: str) -> str:
        return f"{self.url}{path}"

    def _user_body(self, login: str) -> dict[str, Any]:
        body: dict[str, Any] = _skeleton(_response_schema("/user", "get"), self._api(f"/users/{login}"))
        body.update({"login": login, "id": abs(hash(login)) % 100000, "type": "User"})
        return body

    def _repo_body(self, repo: FakeRepo) -> dict[str, Any]:
        body: dict[str, Any] = _skeleton(_response_schema("/repos/{owner}/{repo}", "get"), self._api("/"))
        body["owner"] = {**body.get("owner", {}), **self._user_body(repo.owner)}
        body.update(
            {
                "id": repo.id,
                "name": repo.name,
                "full_name": repo.full_name,
                "private": repo.private,
                "description": repo.description,
                "default_branch": repo.default_branch,
                "html_url": f"{self.url}/{repo.full_name}",
                "clone_url": self.clone_url(repo.full_name),
                "url": self._api(f"/repos/{repo.full_name}"),
            }
        )
        return body

    def _commit_body(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        raw = self.git(repo, "cat-file", "commit", sha)
        header, _, message = raw.partition("\n\n")
        tree, parents = "", []
        for line in header.split("\n"):
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
        base = self._api(f"/repos/{repo.full_name}/git/commits/{sha}")
        who = {"name": "x", "email": "x@example.com", "date": "2026-01-01T00:00:00Z"}
        return {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": base,
            "html_url": f"{self.url}/{repo.full_name}/commit/{sha}",
            "author": who,
            "committer": who,
            "tree": {"sha": tree, "url": self._api(f"/repos/{repo.full_name}/git/trees/{tree}")},
            "message": message,
            "parents": [{"sha": p, "url": base, "html_url": base} for p in parents],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        }

    def _ref_body(self, repo: FakeRepo, branch: str, sha: str) -> dict[str, Any]:
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_{sha[:8]}",
            "url": self._api(f"/repos/{repo.full_name}/git/refs/heads/{branch}"),
            "object": {"type": "commit", "sha": sha, "url": self._api(f"/repos/{repo.full_name}/git/commits/{sha}")},
        }

    # --- request plumbing -------------------------------------------------------------------------
    def _login(self, request: Request) -> str | Response:
        denied = self.require_bearer(request)
        if denied is not None:
            return self.error(401, "Bad credentials")
        token = request.headers["Authorization"].partition(" ")[2].strip()
        return self.users[token]

    def _repo(self, request: Request) -> FakeRepo | Response:
        login = self._login(request)
        if isinstance(login, Response):
            return login
        repo = self.repos.get(f"{request.params['owner']}/{request.params['repo']}".lower())
        if repo is None or (repo.owner != login and repo.owner not in self.orgs):
            return self.error(404, "Not Found")
        return repo

    def _data_repo(self, request: Request) -> FakeRepo | Response:
        repo = self._repo(request)
        if isinstance(repo, FakeRepo) and self._is_empty(repo):
            return self.error(409, _EMPTY)
        return repo

    # --- routes ------------------------------------------------------------------------------------
    @route("GET", r"/user")
    def get_user(self, request: Request) -> Response:
        login = self._login(request)
        return login if isinstance(login, Response) else Response(200, self._user_body(login))

    @route("GET", r"/orgs/(?P<org>[^/]+)")
    def get_org(self, request: Request) -> Response:
        login = self._login(request)
        if isinstance(login, Response):
            return login
        if request.params["org"] not in self.orgs:
            return self.error(404, "Not Found")
        return Response(200, {"login": request.params["org"], "id": 1, "type": "Organization"})

    @route("POST", r"/user/repos")
    @route("POST", r"/orgs/(?P<org>[^/]+)/repos")
    def create_repo(self, request: Request) -> Response:
        login = self._login(request)
        if isinstance(login, Response):
            return login
        owner = request.params.get("org") or login
        if "org" in request.params and owner not in self.orgs:
            return self.error(404, "Not Found")
        body = request.json()
        name = body["name"]
        if f"{owner}/{name}".lower() in self.repos:
            return Response(
                422,
                {
                    "message": "Repository creation failed.",
                    "errors": [
                        {
                            "resource": "Repository",
                            "code": "custom",
                            "field": "name",
                            "message": "name already exists on this account",
                        }
                    ],
                    "documentation_url": "https://docs.github.com/rest",
                },
            )
        repo = self.add_repo(
            owner, name, description=body.get("description") or "", auto_init=bool(body.get("auto_init"))
        )
        repo.private = bool(body.get("private", False))
        return Response(201, self._repo_body(repo))

    @route("GET", _REPO)
    def get_repo(self, request: Request) -> Response:
        repo = self._repo(request)
        return repo if isinstance(repo, Response) else Response(200, self._repo_body(repo))

    @route("DELETE", _REPO)
    def delete_repo(self, request: Request) -> Response:
        repo = self._repo(request)
        if isinstance(repo, Response):
            return repo
        del self.repos[repo.full_name.lower()]
        shutil.rmtree(repo.git_dir, ignore_errors=True)
        return Response(204)

    @route("GET", _REPO + r"/git/ref/heads/(?P<branch>.+)")
    def get_ref(self, request: Request) -> Response:
        repo = self._data_repo(request)
        if isinstance(repo, Response):
            return repo
        sha = self.head(repo, request.params["branch"])
        if sha is None:
            return self.error(404, "Not Found")
        return Response(200, self._ref_body(repo, request.params["branch"], sha))

    @route("POST", _REPO + r"/git/refs")
    def create_ref(self, request: Request) -> Response:
        repo = self._data_repo(request)
        if isinstance(repo, Response):
            return repo
        body = request.json()
        branch = str(body["ref"]).removeprefix("refs/heads/")
        if self.head(repo, branch) is not None:
            return self.error(422, "Reference already exists")
        self.git(repo, "update-ref", f"refs/heads/{branch}", body["sha"])
        return Response(201, self._ref_body(repo, branch, body["sha"]))

    @route("PATCH", _REPO + r"/git/refs/heads/(?P<branch>.+)")
    def update_ref(self, request: Request) -> Response:
        repo = self._data_repo(request)
        if isinstance(repo, Response):
            return repo
        if self.before_update_ref is not None:
            hook, self.before_update_ref = self.before_update_ref, None
            hook(repo)
        branch, body = request.params["branch"], request.json()
        old, new = self.head(repo, branch), str(body["sha"])
        if old is None:
            return self.error(422, "Reference does not exist")
        if self._git(repo, "cat-file", "-e", f"{new}^{{commit}}").returncode != 0:
            return self.error(422, "Object does not exist")
        ancestor = self._git(repo, "merge-base", "--is-ancestor", old, new).returncode == 0
        if not ancestor and not body.get("force"):
            return self.error(422, "Update is not a fast forward")
        self.git(repo, "update-ref", f"refs/heads/{branch}", new, old)
        return Response(200, self._ref_body(repo, branch, new))

    @route("POST", _REPO + r"/git/blobs")
    def create_blob(self, request: Request) -> Response:
        repo = self._data_repo(request)
        if isinstance(repo, Response):
            return repo
        body = request.json()
        raw = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else body["content"].encode()
        sha = self.git(repo, "hash-object", "-w", "--stdin", stdin=raw).strip()
        return Response(201, {"sha": sha, "url": self._api(f"/repos/{repo.full_name}/git/blobs/{sha}")})

    @route("POST", _REPO + r"/git/trees")
    def create_tree(self, request: Request) -> Response:
        repo = self._data_repo(request)
        if isinstance(repo, Response):
            return repo
        body = request.json()
        files = self._files(repo, body["base_tree"]) if body.get("base_tree") else {}
        for item in body["tree"]:
            path = item["path"]
            if "content" in item:
                sha = self.git(repo, "hash-object", "-w", "--stdin", stdin=item["content"].encode()).strip()
            elif item.get("sha") is None:
                if path not in files:
                    return self.error(422, f"tree.path {path} does not exist")
                files.pop(path)
                continue
            else:
                sha = item["sha"]
                if self._git(repo, "cat-file", "-e", sha).returncode != 0:
                    return self.error(422, f"tree.sha {sha} is not a valid blob")
            files[path] = (item["mode"], sha)
        tree = self._write_tree(repo, files)
        listing = [{"path": p, "mode": m, "type": "blob", "sha": s} for p, (m, s) in sorted(files.items())]
        url = self._api(f"/repos/{repo.full_name}/git/trees/{tree}")
        return Response(201, {"sha": tree, "url": url, "tree": listing, "truncated": False})

    @route("GET", _REPO + r"/git/trees/(?P<sha>[0-9a-f]{40})")
    def get_tree(self, request: Request) -> Response:
        repo = self._data_repo(request)
        if isinstance(repo, Response):
            return repo
        sha = request.params["sha"]
        args = ["ls-tree", "-z", "-r", "-t", sha] if request.query.get("recursive") else ["ls-tree", "-z", sha]
        done = self._git(repo, *args)
        if done.returncode != 0:
            return self.error(404, "Not Found")
        items = []
        for record in done.stdout.decode().split("\0"):
            if record:
                meta, path = record.split("\t", 1)
                mode, kind, oid = meta.split(" ")
                items.append({"path": path, "mode": mode, "type": kind, "sha": oid})
        return Response(200, {"sha": sha, "url": self._api(request.path), "tree": items, "truncated": False})

    @route("POST", _REPO + r"/git/commits")
    def create_commit(self, request: Request) -> Response:
        repo = self._data_repo(request)
        if isinstance(repo, Response):
            return repo
        body = request.json()
        if self._git(repo, "cat-file", "-e", f"{body['tree']}^{{tree}}").returncode != 0:
            return self.error(422, "Tree SHA does not exist")
        sha = self._commit(repo, body["tree"], list(body.get("parents", [])), body["message"], body.get("author") or {})
        return Response(201, self._commit_body(repo, sha))

    @route("GET", _REPO + r"/git/commits/(?P<sha>[0-9a-f]{40})")
    def get_commit(self, request: Request) -> Response:
        repo = self._data_repo(request)
        if isinstance(repo, Response):
            return repo
        if self._git(repo, "cat-file", "-e", f"{request.params['sha']}^{{commit}}").returncode != 0:
            return self.error(404, "Not Found")
        return Response(200, self._commit_body(repo, request.params["sha"]))

    @route("PUT", _REPO + r"/contents/(?P<path>.+)")
    def put_contents(self, request: Request) -> Response:
        repo = self._repo(request)
        if isinstance(repo, Response):
            return repo
        body = request.json()
        branch = body.get("branch") or repo.default_branch
        head = self.head(repo, branch)
        files = self._files(repo, head) if head else {}
        blob = self.git(repo, "hash-object", "-w", "--stdin", stdin=base64.b64decode(body["content"])).strip()
        files[request.params["path"]] = ("100644", blob)
        tree = self._write_tree(repo, files)
        sha = self._commit(repo, tree, [head] if head else [], body["message"], {"name": "x"})
        self.git(repo, "update-ref", f"refs/heads/{branch}", sha)
        commit = self._commit_body(repo, sha)
        commit.pop("verification", None)
        return Response(201, {"content": None, "commit": commit})

    # --- GitHub Pages ----------------------------------------------------------------------------------
    def enable_pages(self, repo: FakeRepo, branch: str = "gh-pages", path: str = "/") -> FakePages:
        """Turn Pages on for ``repo`` directly (as if its owner did it in the settings)."""
        with self.lock:
            site = self.pages[repo.id] = FakePages(branch=branch, path=path)
            self._pages_sync(repo, site)
            return site

    def _pages_sync(self, repo: FakeRepo, site: FakePages) -> None:
        """Start a build when the source branch moved since the last one."""
        head = self.head(repo, site.branch)
        if head is None or (site.builds and site.builds[-1].commit == head):
            return
        failed, self.pages_fail_next = self.pages_fail_next, None
        polls = self.pages_build_polls
        status = "building" if polls else ("errored" if failed else "built")
        site.builds.append(FakePagesBuild(head, status, polls, failed))

    def _pages_site(self, request: Request) -> tuple[FakeRepo, FakePages] | Response:
        repo = self._repo(request)
        if isinstance(repo, Response):
            return repo
        site = self.pages.get(repo.id)
        if site is None:
            return self.error(404, "Not Found")
        self._pages_sync(repo, site)
        return repo, site

    def pages_url(self, repo: FakeRepo) -> str:
        """The public URL the fake serves ``repo``'s Pages site at."""
        return f"{self.url}/pages/{repo.full_name}/"

    def _pages_body(self, repo: FakeRepo, site: FakePages) -> dict[str, Any]:
        body: dict[str, Any] = _skeleton(_response_schema("/repos/{owner}/{repo}/pages", "get"), self._api("/"))
        latest = site.builds[-1].status if site.builds else "building"
        body.update(
            {
                "url": self._api(f"/repos/{repo.full_name}/pages"),
                "status": latest,
                "html_url": self.pages_url(repo),
                "build_type": "legacy",
                "source": {"branch": site.branch, "path": site.path},
                "public": not repo.private,
                "https_enforced": True,
            }
        )
        return body

    @route("GET", _REPO + r"/pages")
    def get_pages(self, request: Request) -> Response:
        found = self._pages_site(request)
        return found if isinstance(found, Response) else Response(200, self._pages_body(*found))

    @route("POST", _REPO + r"/pages")
    def create_pages(self, request: Request) -> Response:
        repo = self._repo(request)
        if isinstance(repo, Response):
            return repo
        if repo.id in self.pages:
            return self.error(409, "GitHub Pages is already enabled.")
        if repo.private and not self.pages_on_private:
            return self.error(422, "Your current plan does not support GitHub Pages for this repository.")
        source = (request.json() or {}).get("source") or {}
        branch, path = str(source.get("branch") or ""), str(source.get("path") or "/")
        if not branch or self.head(repo, branch) is None:
            return self.error(422, f"The {branch or 'source'} branch must exist before GitHub Pages can be built.")
        site = self.pages[repo.id] = FakePages(branch=branch, path=path)
        self._pages_sync(repo, site)
        return Response(201, self._pages_body(repo, site))

    @route("DELETE", _REPO + r"/pages")
    def delete_pages(self, request: Request) -> Response:
        found = self._pages_site(request)
        if isinstance(found, Response):
            return found
        del self.pages[found[0].id]
        return Response(204)

    @route("GET", _REPO + r"/pages/builds/latest")
    def get_latest_pages_build(self, request: Request) -> Response:
        found = self._pages_site(request)
        if isinstance(found, Response):
            return found
        repo, site = found
        if not site.builds:
            return self.error(404, "Not Found")
        build = site.builds[-1]
        if build.status == "building":
            if build.polls_left > 0:
                build.polls_left -= 1
            else:
                build.status = "errored" if build.error else "built"
        schema = _response_schema("/repos/{owner}/{repo}/pages/builds/latest", "get")
        body: dict[str, Any] = _skeleton(schema, self._api("/"))
        body.update(
            {
                "url": self._api(f"/repos/{repo.full_name}/pages/builds/latest"),
                "status": build.status,
                "error": {"message": build.error},
                "commit": build.commit,
            }
        )
        return Response(200, body)

    @route("GET", r"/pages/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?P<path>/.*)?")
    def serve_pages(self, request: Request) -> Response:
        """The public site: files of the last built commit (``/`` and folders serve ``index.html``)."""
        repo = self.repos.get(f"{request.params['owner']}/{request.params['repo']}".lower())
        site = self.pages.get(repo.id) if repo else None
        if repo is None or site is None:
            return Response(404, "There isn't a GitHub Pages site here.")
        self._pages_sync(repo, site)
        commit = site.served_commit()
        path = (request.params.get("path") or "/").lstrip("/")
        if not path or path.endswith("/"):
            path += "index.html"
        root = site.path.strip("/")
        done = self._git(repo, "cat-file", "blob", f"{commit}:{root + '/' if root else ''}{path}") if commit else None
        if done is None or done.returncode != 0:
            return Response(404, "File not found")
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(200, done.stdout, {"Content-Type": ctype})


def name_of(url: str) -> str:
    """``owner/name`` from a fake ``html_url``."""
    found = re.search(r"://[^/]+/([^/]+/[^/]+)$", url)
    assert found, url
    return found.group(1)
