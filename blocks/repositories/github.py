"""GitHub repositories: one commit per snapshot through the Git data API (``pombolt-github-repository``).

A publish makes, for an existing repository whose branch must change, at most 5 requests plus one per
tree chunk: ``GET /repos/{o}/{r}``, ``GET .../git/ref/heads/{branch}``, ``GET .../git/commits/{head}``,
``POST .../git/trees`` per chunk, ``POST .../git/commits`` and ``PATCH .../git/refs/heads/{branch}``.
The snapshot's git tree id is computed locally first (:mod:`blocks.repositories.git_tree`); when it
equals the head's tree, the publish stops after the three reads with zero writes.

- Text files (UTF-8 without NUL) go inline in tree entries; binary files go through ``POST
  .../git/blobs`` (base64) unless the head tree already holds the same blob (one extra
  ``GET .../git/trees`` read, made only when the snapshot has binary files).
- Trees are full replacements built in bounded chunks (count and bytes): the first chunk has no
  ``base_tree`` — so removed files disappear — and each further chunk builds on the previous one.
  The resulting tree id must equal the local one, which proves every byte arrived unchanged.
- The ref moves as a fast-forward; a 422 (branch moved meanwhile) re-reads the branch and retries
  once on top of the new head; a second 422 is :class:`~core.errors.ConcurrentUpdate`.
- Crash between commit and ref update: after creating a commit the Block stores a small record
  ``github-commit/<sha256(repository id, parents, tree)>`` in the snapshot store. A re-run that finds
  the record for the same repository, parents and tree moves the ref to that commit instead of making
  a second one.
- Ownership: the repository is recorded by id in :class:`RepositoryState` and must still have that id;
  a repository with the project's name that is not the project's is a :class:`~core.errors.Conflict`
  (adopted only when its description carries the project's marker ``[pombolt:<project id>]``, i.e. a
  previous run of this project created it and crashed before recording it).
- New repositories are created with ``auto_init`` (an empty repository refuses the Git data API with
  409 "Git Repository is empty."; an existing empty one gets its first commit through the Contents
  API). That first "Initial commit" (parentless, README.md only, in the project's own repository) is
  the one commit ever replaced: the first publish makes a root commit and moves the ref with
  ``force: true``, so the history is exactly the project's commits. Any other update is fast-forward.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar

from prefect_github import GitHubCredentials
from pydantic import BaseModel, Field, SecretStr, field_validator

from blocks.naming import repository_name
from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState, RepositoryTarget
from blocks.repositories.git_tree import TreeEntry, blob_id, tree_id
from blocks.repositories.github_client import GitHubClient
from core.errors import BlobMissing, ConcurrentUpdate, ConfigError, Conflict, ProviderError
from core.snapshots import Manifest, SnapshotStore

__all__ = ["GitHubRepositoryTarget"]

_PROVIDER = "github"
_PLACEHOLDER_MESSAGE = "Initial commit"
_RECORD = "github-commit"
_MAX_CHUNK_BYTES = 4 * 1024 * 1024


class _PendingCommit(BaseModel):
    sha: str


class _Head(BaseModel):
    sha: str | None = None
    tree: str | None = None
    placeholder: bool = False


def _marker(project_id: str) -> str:
    return f"[pombolt:{project_id}]"


def _run_marker(run_id: str) -> str:
    return f"[run:{run_id[:16]}]"


def _as_text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class GitHubRepositoryTarget(RepositoryTarget):
    """Keeps each project in its own GitHub repository (github.com or GitHub Enterprise)."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt GitHub Repository"
    _block_type_slug: ClassVar[str | None] = "pombolt-github-repository"
    _description: ClassVar[str | None] = (
        "One GitHub repository per project; one commit per changed snapshot through the Git data API."
    )

    credentials: GitHubCredentials = Field(
        ..., title="Credentials", description="prefect-github credentials holding the token."
    )
    api_url: str = Field(
        "https://api.github.com", title="API URL", description="REST API base (GitHub Enterprise: .../api/v3)."
    )
    owner: str | None = Field(
        None, title="Owner", description="User or organisation owning the repositories; default the token's user."
    )
    private: bool = Field(True, title="Private", description="Create repositories as private.")
    branch: str = Field("main", title="Branch", description="Branch that receives the commits.")
    author_name: str = Field("Pom-Bolt", title="Author name", description="Commit author and committer name.")
    author_email: str = Field(
        "pombolt@users.noreply.github.com", title="Author email", description="Commit author and committer email."
    )
    description: str = Field(
        "Generated by Pom-Bolt", title="Description", description="Description of created repositories."
    )
    tree_chunk_size: int = Field(
        500, ge=1, le=5000, title="Tree chunk size", description="Files per create-tree request."
    )

    @field_validator("branch")
    @classmethod
    def _valid_branch(cls, value: str) -> str:
        if not value or value.startswith(("-", "/")) or ".." in value or value.endswith((".lock", "/")):
            raise ValueError(f"{value!r} is not a valid Git branch name")
        return value

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Prove the token (``GET /user``) and, for an organisation owner, access to it (``GET /orgs/..``).

        Raises:
            AuthFailed: The token is rejected (never retried).
            ConfigError: No token, or the organisation is not visible to the token.
        """
        with self._client() as gh:
            login = str(gh.user()["login"])
            if self.owner and self.owner.lower() != login.lower() and gh.org(self.owner).status_code == 404:
                raise ConfigError(
                    f"GitHub organisation {self.owner!r} does not exist or the token of user {login!r} "
                    f"cannot see it; fix 'owner' or grant the token access"
                )

    def publish(self, snapshots: SnapshotStore, request: PublishRequest, state: RepositoryState) -> PublishResult:
        """Make the branch's tree equal the snapshot with at most one new commit.

        Raises:
            Conflict: The repository name is taken by a repository that is not the project's.
            ConcurrentUpdate: The branch moved twice while publishing (retryable).
            AuthFailed, RateLimited, ProviderUnavailable, ProviderRejected: From GitHub.
        """
        manifest = snapshots.manifest(request.snapshot_id)
        contents = {e.sha256: snapshots.read_blob(e.sha256, path=e.path) for e in manifest.files}
        entries = [TreeEntry(e.path, e.mode, blob_id(contents[e.sha256])) for e in manifest.files]
        local_tree = tree_id(entries)
        with self._client() as gh:
            repo, created = self._ensure_repository(gh, request, state)
            full = str(repo["full_name"])
            head = self._head(gh, full, repo)
            sha, committed = str(head.sha), False
            if head.tree != local_tree:
                tree = self._build_tree(gh, full, manifest, contents, head, local_tree)
                sha = self._commit_and_move(gh, snapshots, full, str(repo["id"]), tree, head, request)
                committed = sha != head.sha
            stats = gh.http.stats
        url = str(repo["html_url"])
        return PublishResult(
            repository_url=url,
            commit_sha=sha,
            committed=committed,
            created=created,
            state=RepositoryState(
                repository_id=str(repo["id"]),
                url=url,
                created_by_run=request.run_id if created else state.created_by_run,
                extra={**state.extra, "full_name": full, "branch": self.branch, "clone_url": repo.get("clone_url")},
            ),
            requests=stats.requests,
            writes=stats.writes,
        )

    def remove(self, state: RepositoryState) -> None:
        """Delete the project's repository, only if a run of the project created it and it is still it.

        Raises:
            Conflict: The name now points at a repository with another id.
        """
        full = state.extra.get("full_name")
        if not state.repository_id or not state.created_by_run or not isinstance(full, str):
            return
        with self._client() as gh:
            found = gh.repo(full)
            if found.status_code == 404:
                return
            if str(found.json()["id"]) != state.repository_id:
                raise Conflict(_PROVIDER, f"{full} is no longer the project's repository; not deleting it")
            gh.delete_repo(full)

    # --- helpers ------------------------------------------------------------------------------------
    def _client(self) -> GitHubClient:
        token: SecretStr | None = self.credentials.token
        if token is None or not token.get_secret_value():
            raise ConfigError("the GitHub credentials Block has no token; set 'token' on it")
        return GitHubClient(self.api_url, token, block_name=getattr(self, "_block_document_name", None))

    def _ensure_repository(
        self, gh: GitHubClient, request: PublishRequest, state: RepositoryState
    ) -> tuple[dict[str, Any], bool]:
        """Return the project's repository (found by recorded id, adopted by marker, or created)."""
        name = repository_name(request.project_name, request.project_id)
        full = state.extra.get("full_name")
        login: str | None = None
        if not isinstance(full, str):
            login = str(gh.user()["login"]) if not self.owner else None
            full = f"{self.owner or login}/{name}"
        found = gh.repo(full)
        if found.status_code == 200:
            repo: dict[str, Any] = found.json()
            ours = (
                str(repo["id"]) == state.repository_id
                if state.repository_id
                else _marker(request.project_id) in str(repo.get("description") or "")
            )
            if not ours:
                raise Conflict(
                    _PROVIDER,
                    f"repository {full} exists but is not this project's (id {repo['id']}); Pom-Bolt never "
                    "writes into another repository: rename or delete it, or set another 'owner'",
                )
            # a repository carrying this run's marker was created by this run (its answer was lost and the
            # task retried): keep saying so, so compensation can remove it
            return repo, not state.repository_id and _run_marker(request.run_id) in str(repo.get("description") or "")
        owner, _, repo_name = full.partition("/")
        if login is None and self.owner:
            login = str(gh.user()["login"])
        org = owner if login is None or owner.lower() != login.lower() else None
        body = {
            "name": repo_name,
            "description": f"{self.description} {_marker(request.project_id)} {_run_marker(request.run_id)}".strip(),
            "private": self.private,
            "auto_init": True,
        }
        made = gh.create_repo(org, body)
        if made.status_code == 422:
            raise Conflict(
                _PROVIDER,
                f"cannot create repository {full}: the name is taken or invalid ({made.text[:200]}); "
                "rename or delete the existing repository",
            )
        return made.json(), True

    def _head(self, gh: GitHubClient, full: str, repo: dict[str, Any]) -> _Head:
        """Read the branch head and its tree; make the first commit of an empty repository."""
        found = gh.ref(full, self.branch)
        if found.status_code == 404:
            return _Head()
        if found.status_code == 409:  # "Git Repository is empty.": the Git data API needs a commit
            body = {
                "message": _PLACEHOLDER_MESSAGE,
                "content": base64.b64encode(f"# {repo['name']}\n".encode()).decode(),
                "branch": self.branch,
            }
            sha = str(gh.put_file(full, "README.md", body).json()["commit"]["sha"])
        else:
            sha = str(found.json()["object"]["sha"])
        commit = gh.commit(full, sha)
        tree = str(commit["tree"]["sha"])
        placeholder = False
        if not commit.get("parents") and str(commit.get("message", "")).strip() == _PLACEHOLDER_MESSAGE:
            paths = [item.get("path") for item in gh.tree(full, tree).get("tree", [])]
            placeholder = paths == ["README.md"]
        return _Head(sha=sha, tree=tree, placeholder=placeholder)

    def _build_tree(
        self,
        gh: GitHubClient,
        full: str,
        manifest: Manifest,
        contents: dict[str, bytes],
        head: _Head,
        local_tree: str,
    ) -> str:
        """Create the snapshot's tree in chunks and check it equals the local tree id."""
        texts = {sha: _as_text(data) for sha, data in contents.items()}
        known: set[str] = set()
        if head.tree and not head.placeholder and any(t is None for t in texts.values()):
            known = {str(i["sha"]) for i in gh.tree(full, head.tree).get("tree", []) if i.get("type") == "blob"}
        uploaded: dict[str, str] = {}
        chunks: list[list[dict[str, Any]]] = [[]]
        size = 0
        for entry in manifest.files:
            item: dict[str, Any] = {"path": entry.path, "mode": entry.mode, "type": "blob"}
            text = texts[entry.sha256]
            if text is not None:
                item["content"] = text
                cost = len(contents[entry.sha256])
            else:
                oid = blob_id(contents[entry.sha256])
                if oid not in known and entry.sha256 not in uploaded:
                    made = gh.create_blob(full, base64.b64encode(contents[entry.sha256]).decode())
                    if made != oid:
                        raise ProviderError(_PROVIDER, f"GitHub stored {entry.path} as blob {made}, expected {oid}")
                    uploaded[entry.sha256] = made
                item["sha"] = oid
                cost = 100
            if chunks[-1] and (len(chunks[-1]) >= self.tree_chunk_size or size + cost > _MAX_CHUNK_BYTES):
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += cost
        tree: str | None = None
        for chunk in chunks:
            tree = gh.create_tree(full, chunk, tree)
        if tree != local_tree:
            raise ProviderError(
                _PROVIDER,
                f"GitHub built tree {tree} for {full}, but the snapshot's tree is {local_tree}; "
                "some file did not arrive byte for byte — report this, then run again",
            )
        return local_tree

    def _commit_and_move(
        self,
        gh: GitHubClient,
        snapshots: SnapshotStore,
        full: str,
        repo_id: str,
        tree: str,
        head: _Head,
        request: PublishRequest,
    ) -> str:
        """Commit ``tree`` on the head (reusing a recorded commit) and fast-forward the branch."""
        parents = [head.sha] if head.sha and not head.placeholder else []
        sha = self._commit(gh, snapshots, full, repo_id, tree, parents, request)
        if head.sha is None:
            moved = gh.create_ref(full, self.branch, sha)
        else:
            moved = gh.update_ref(full, self.branch, sha, force=head.placeholder)
        if moved.status_code != 422:
            return sha
        # The branch moved (or the recorded commit is unusable): re-read it and retry once on top.
        again = self._head(gh, full, {"name": full.partition("/")[2]})
        if again.tree == tree and again.sha:
            return again.sha
        sha = self._commit(gh, snapshots, full, repo_id, tree, [again.sha] if again.sha else [], request, reuse=False)
        moved = gh.update_ref(full, self.branch, sha) if again.sha else gh.create_ref(full, self.branch, sha)
        if moved.status_code == 422:
            raise ConcurrentUpdate(f"{self.branch} of {full} keeps moving while Pom-Bolt publishes; run again")
        return sha

    def _commit(
        self,
        gh: GitHubClient,
        snapshots: SnapshotStore,
        full: str,
        repo_id: str,
        tree: str,
        parents: list[str],
        request: PublishRequest,
        *,
        reuse: bool = True,
    ) -> str:
        """Create the commit, or return the one a crashed earlier attempt already created."""
        key = hashlib.sha256(f"{repo_id}\n{','.join(parents)}\n{tree}".encode()).hexdigest()
        if reuse:
            try:
                return str(snapshots.get_record(_RECORD, key, _PendingCommit).sha)
            except BlobMissing:
                pass
        now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        who = {"name": self.author_name, "email": self.author_email, "date": now}
        message = (
            f"{request.message.strip() or 'Update generated app'}\n\n"
            f"Pombolt-Snapshot: {request.snapshot_id}\nPombolt-Run: {request.run_id}\n"
        )
        body = {"message": message, "tree": tree, "parents": parents, "author": who, "committer": who}
        sha = gh.create_commit(full, body)
        snapshots.put_record(_RECORD, key, _PendingCommit(sha=sha))
        return sha
