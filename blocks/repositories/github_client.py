"""A thin GitHub REST client for the dozen calls publishing needs, on :func:`core.http.make_client`.

Why not githubkit or PyGithub: both cover a custom base URL, but PyGithub has its own retry layer
(``GithubRetry``) on top of urllib3 and githubkit its own on httpx; using either would put a second
retry/rate-limit policy next to ours (DESIGN §5 forbids two on one call) or switch ours off, and would
hide the request/write counts the run records. Our factory already honours ``Retry-After``,
``x-ratelimit-remaining``/``x-ratelimit-reset`` and the secondary-limit 403, redacts tokens and counts
requests, so this module only names the endpoints (users, repositories, refs, blobs, trees, commits,
contents) and returns their JSON. It is not a wrapper of the whole API.

Content-creating calls first pass :func:`core.concurrency.provider_slot`: inside a Prefect flow or
task run it takes one slot of the global rate limit ``github-api`` (``strict=True``, created by
``pombolt init``: 80 writes a minute across all workers); outside a Prefect run (library use, contract
tests, benches) it does nothing, because there is no Prefect API to hold the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx
from prefect_github import GitHubCredentials
from pydantic import BaseModel, Field, SecretStr

from core.concurrency import GITHUB_LIMIT, provider_slot
from core.errors import ConfigError
from core.http import ProviderClient, make_client

__all__ = ["GitHubAccount", "GitHubClient"]

_ACCEPT = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def _path(value: str) -> str:
    return quote(value, safe="")


class GitHubAccount(BaseModel):
    """The fields every GitHub Block has: whose token, which API, which owner (a mixin of those Blocks)."""

    credentials: GitHubCredentials = Field(
        ..., title="Credentials", description="prefect-github credentials holding the token."
    )
    api_url: str = Field(
        "https://api.github.com", title="API URL", description="REST API base (GitHub Enterprise: .../api/v3)."
    )
    owner: str | None = Field(
        None, title="Owner", description="User or organisation owning the repositories; default the token's user."
    )

    def _token(self) -> SecretStr:
        """The token of the credentials Block.

        Raises:
            ConfigError: The credentials Block holds no token.
        """
        token: SecretStr | None = self.credentials.token
        if token is None or not token.get_secret_value():
            raise ConfigError("the GitHub credentials Block has no token; set 'token' on it")
        return token


class GitHubClient:
    """The GitHub calls Pom-Bolt makes, each returning the parsed JSON body.

    Attributes:
        http: The underlying :class:`~core.http.ProviderClient` (its ``stats`` count requests/writes).
    """

    def __init__(
        self,
        api_url: str,
        token: SecretStr,
        *,
        block_name: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http: ProviderClient = make_client(
            "github",
            api_url.rstrip("/"),
            token=token,
            headers=_ACCEPT,
            block_name=block_name,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reads -------------------------------------------------------------------------------------
    def user(self) -> dict[str, Any]:
        """``GET /user``: the token's account."""
        result: dict[str, Any] = self.http.json("GET", "/user")
        return result

    def org(self, org: str) -> httpx.Response:
        """``GET /orgs/{org}`` (404 returned, not raised)."""
        return self.http.get(f"/orgs/{_path(org)}", expected=(404,))

    def repo(self, full_name: str) -> httpx.Response:
        """``GET /repos/{owner}/{repo}`` (404 returned, not raised)."""
        return self.http.get(f"/repos/{full_name}", expected=(404,))

    def ref(self, full_name: str, branch: str) -> httpx.Response:
        """``GET /repos/{o}/{r}/git/ref/heads/{branch}`` (404 no branch, 409 empty: returned)."""
        return self.http.get(f"/repos/{full_name}/git/ref/heads/{branch}", expected=(404, 409))

    def commit(self, full_name: str, sha: str) -> dict[str, Any]:
        """``GET /repos/{o}/{r}/git/commits/{sha}``."""
        result: dict[str, Any] = self.http.json("GET", f"/repos/{full_name}/git/commits/{sha}")
        return result

    def commit_exists(self, full_name: str, sha: str) -> bool:
        """Whether a commit object exists (``GET .../git/commits/{sha}``, 404/422 mean no)."""
        response = self.http.get(f"/repos/{full_name}/git/commits/{sha}", expected=(404, 409, 422))
        return response.status_code == 200

    def tree(self, full_name: str, sha: str) -> dict[str, Any]:
        """``GET /repos/{o}/{r}/git/trees/{sha}?recursive=1``."""
        result: dict[str, Any] = self.http.json("GET", f"/repos/{full_name}/git/trees/{sha}", params={"recursive": "1"})
        return result

    # --- writes (each passes the github-api rate limit) ---------------------------------------------
    def _write(self, method: str, path: str, body: Any, expected: Iterable[int] = ()) -> httpx.Response:
        provider_slot(GITHUB_LIMIT)
        return self.http.request(method, path, json=body, expected=expected)

    def create_repo(self, org: str | None, body: dict[str, Any]) -> httpx.Response:
        """``POST /user/repos`` or ``/orgs/{org}/repos`` (422 name taken: returned)."""
        path = f"/orgs/{_path(org)}/repos" if org else "/user/repos"
        return self._write("POST", path, body, expected=(422,))

    def delete_repo(self, full_name: str) -> httpx.Response:
        """``DELETE /repos/{o}/{r}`` (404 returned: already gone)."""
        return self._write("DELETE", f"/repos/{full_name}", None, expected=(404,))

    def create_blob(self, full_name: str, content_b64: str) -> str:
        """``POST .../git/blobs`` with base64 content; returns the blob sha."""
        body = {"content": content_b64, "encoding": "base64"}
        return str(self._write("POST", f"/repos/{full_name}/git/blobs", body).json()["sha"])

    def create_tree(self, full_name: str, entries: list[dict[str, Any]], base_tree: str | None) -> str:
        """``POST .../git/trees``; returns the tree sha."""
        body: dict[str, Any] = {"tree": entries}
        if base_tree:
            body["base_tree"] = base_tree
        return str(self._write("POST", f"/repos/{full_name}/git/trees", body).json()["sha"])

    def create_commit(self, full_name: str, body: dict[str, Any]) -> str:
        """``POST .../git/commits``; returns the commit sha."""
        return str(self._write("POST", f"/repos/{full_name}/git/commits", body).json()["sha"])

    def update_ref(self, full_name: str, branch: str, sha: str, *, force: bool = False) -> httpx.Response:
        """``PATCH .../git/refs/heads/{branch}`` (422 not a fast-forward: returned)."""
        body = {"sha": sha, "force": force}
        return self._write("PATCH", f"/repos/{full_name}/git/refs/heads/{branch}", body, expected=(422,))

    def create_ref(self, full_name: str, branch: str, sha: str) -> httpx.Response:
        """``POST .../git/refs`` for a new branch (422 already exists: returned)."""
        body = {"ref": f"refs/heads/{branch}", "sha": sha}
        return self._write("POST", f"/repos/{full_name}/git/refs", body, expected=(422,))

    def put_file(self, full_name: str, path: str, body: dict[str, Any]) -> httpx.Response:
        """``PUT .../contents/{path}``: the only way to make the first commit of an empty repository."""
        return self._write("PUT", f"/repos/{full_name}/contents/{quote(path)}", body)
