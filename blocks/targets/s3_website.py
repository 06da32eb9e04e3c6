"""Static websites in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO), on prefect-aws's ``S3Bucket``.

Layout in the bucket (under the ``S3Bucket``'s ``bucket_folder``)::

    <prefix>/<site_id>/<path>                      the site's files, with Content-Type and Cache-Control
    <prefix>/<site_id>/.pombolt-manifest.json      what is there: path -> sha256, size, headers

A deploy reads the manifest object, uploads only the files whose SHA-256 or headers differ, deletes the
objects the new site no longer has, then writes the new manifest (last, so an interrupted deploy is redone).
HTML goes up after every other file, so a page never points at an asset that is not there yet.

The live URL is ``<base_url>/<site_id>/`` when a website base URL is configured (an S3 website endpoint, an
R2 custom domain, a CDN); otherwise the path-style object URL of ``index.html``
(``<endpoint>/<bucket>/<key prefix>/index.html``), which is what tests fetch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError
from prefect_aws import S3Bucket
from pydantic import BaseModel, Field

from blocks.targets._common import content_type, deploy_result
from blocks.targets.base import DeploymentTarget, DeployRequest, DeployResult, SiteState
from blocks.targets.local_static import site_name
from core.errors import AuthFailed, ConfigError, ProviderError, ProviderRejected, ProviderUnavailable
from core.redaction import redact
from core.snapshots import SnapshotStore

__all__ = ["S3Website"]

_PROVIDER = "s3"
MANIFEST_NAME = ".pombolt-manifest.json"
_AUTH_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "403"})


class _Entry(BaseModel):
    sha256: str
    size: int
    content_type: str
    cache_control: str


class _SiteManifest(BaseModel):
    snapshot_id: str | None = None
    files: dict[str, _Entry] = Field(default_factory=dict)


class S3Website(DeploymentTarget):
    """Serves each project's site from a folder of an S3-compatible bucket, uploading only changed objects."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt S3 Website"
    _block_type_slug: ClassVar[str | None] = "pombolt-s3-website"
    _description: ClassVar[str | None] = (
        "Static sites in an S3, R2 or MinIO bucket (any endpoint_url); only changed objects are uploaded."
    )

    bucket: S3Bucket = Field(
        title="Bucket", description="prefect-aws S3Bucket (with AwsCredentials; set endpoint_url for R2/MinIO)."
    )
    prefix: str = Field("sites", title="Key prefix", description="Folder of the sites inside the bucket.")
    base_url: str | None = Field(
        None,
        title="Website base URL",
        description="URL serving the prefix folder (S3 website endpoint, R2 domain, CDN); the live URL is "
        "<base_url>/<site_id>/. Default: the path-style object URL of index.html.",
    )
    public_read_acl: bool = Field(
        False,
        title="Public-read ACL",
        description="Send ACL=public-read with every object (buckets that use ACLs; leave off for R2 and for "
        "buckets made public by a bucket policy or a custom domain).",
    )
    html_cache_control: str = Field("no-cache", title="Cache-Control for HTML", description="HTML pages.")
    asset_cache_control: str = Field(
        "public, max-age=300", title="Cache-Control for assets", description="Every file that is not HTML."
    )

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Check the credentials and that the bucket exists (``HeadBucket``); no side effects.

        Raises:
            AuthFailed: The credentials are rejected.
            ProviderRejected: The bucket does not exist.
            ProviderUnavailable: The endpoint is unreachable.
        """
        with self._errors("HeadBucket"):
            self._client().head_bucket(Bucket=self.bucket.bucket_name)

    def deploy(self, snapshots: SnapshotStore, request: DeployRequest, state: SiteState) -> DeployResult:
        """Make the site folder equal the snapshot: upload changed objects, delete removed ones.

        Raises:
            ProviderError: S3 refused or failed a call (translated, with S3's message).
        """
        client = self._client()
        site_id = state.site_id or site_name(request.project_name, request.project_id)
        folder = self._folder(site_id)
        manifest = snapshots.manifest(request.site_snapshot_id)
        previous = self._read_manifest(client, folder)
        created = previous is None and not state.site_id
        old = previous.files if previous else {}
        wanted = {e.path: self._entry(e.path, e.sha256, e.size) for e in manifest.files}
        changed = [p for p, entry in wanted.items() if old.get(p) != entry]
        changed.sort(key=lambda p: (content_type(p).startswith("text/html"), p))  # HTML last
        uploaded = sent = 0
        by_path = manifest.by_path()
        for path in changed:
            entry = wanted[path]
            data = snapshots.read_blob(by_path[path].sha256, path=path)
            extra = {"ACL": "public-read"} if self.public_read_acl else {}
            with self._errors(f"PutObject {path}"):
                client.put_object(
                    Bucket=self.bucket.bucket_name,
                    Key=f"{folder}/{path}",
                    Body=data,
                    ContentType=entry.content_type,
                    CacheControl=entry.cache_control,
                    **extra,
                )
            uploaded, sent = uploaded + 1, sent + len(data)
        removed = sorted(set(old) - set(wanted))
        for start in range(0, len(removed), 1000):
            batch = [{"Key": f"{folder}/{p}"} for p in removed[start : start + 1000]]
            with self._errors("DeleteObjects"):
                client.delete_objects(Bucket=self.bucket.bucket_name, Delete={"Objects": batch, "Quiet": True})
        body = _SiteManifest(snapshot_id=request.site_snapshot_id, files=wanted).model_dump_json().encode()
        with self._errors("PutObject manifest"):
            client.put_object(
                Bucket=self.bucket.bucket_name,
                Key=f"{folder}/{MANIFEST_NAME}",
                Body=body,
                ContentType="application/json",
                CacheControl="no-store",
            )
        live_url = self._live_url(client, site_id, folder)
        return deploy_result(
            request,
            state,
            site_id=site_id,
            live_url=live_url,
            deploy_id=request.site_snapshot_id,
            created=created,
            uploaded=(uploaded, sent),
            files_deleted=len(removed),
            extra={"bucket": self.bucket.bucket_name, "folder": folder},
        )

    def remove(self, state: SiteState) -> None:
        """Delete every object of the site (its folder); nothing to do when it is already empty."""
        if not state.site_id:
            return
        client = self._client()
        folder = self._folder(state.site_id)
        with self._errors("ListObjectsV2"):
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket.bucket_name, Prefix=folder + "/"
            )
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            with self._errors("DeleteObjects"):
                client.delete_objects(Bucket=self.bucket.bucket_name, Delete={"Objects": batch, "Quiet": True})

    # --- helpers ------------------------------------------------------------------------------------
    def _client(self) -> Any:
        return self.bucket.credentials.get_s3_client()

    def _folder(self, site_id: str) -> str:
        if "/" in site_id or site_id in ("", ".", ".."):
            raise ConfigError(f"site id {site_id!r} is not an S3 website folder name")
        parts = [self.bucket.bucket_folder.strip("/"), self.prefix.strip("/"), site_id]
        return "/".join(p for p in parts if p)

    def _entry(self, path: str, sha256: str, size: int) -> _Entry:
        kind = content_type(path)
        cache = self.html_cache_control if kind.startswith("text/html") else self.asset_cache_control
        return _Entry(sha256=sha256, size=size, content_type=kind, cache_control=cache)

    def _read_manifest(self, client: Any, folder: str) -> _SiteManifest | None:
        try:
            raw = client.get_object(Bucket=self.bucket.bucket_name, Key=f"{folder}/{MANIFEST_NAME}")["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise _translate(exc, "GetObject manifest") from exc
        except BotoCoreError as exc:
            raise _translate(exc, "GetObject manifest") from exc
        try:
            return _SiteManifest.model_validate(json.loads(raw))
        except ValueError:
            return _SiteManifest()  # unreadable: treat every object as changed, so the deploy repairs it

    def _live_url(self, client: Any, site_id: str, folder: str) -> str:
        if self.base_url:
            return f"{self.base_url.rstrip('/')}/{quote(site_id)}/"
        endpoint = str(client.meta.endpoint_url).rstrip("/")
        return f"{endpoint}/{quote(self.bucket.bucket_name)}/{quote(folder)}/index.html"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, what) from exc


def _translate(exc: ClientError | BotoCoreError, what: str) -> ProviderError:
    """botocore's errors as ours, with S3's own code and message (redacted)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = redact(str(error.get("Message") or code))
        text = f"{what} failed: {code}: {message}"
        if code in _AUTH_CODES:
            return AuthFailed(_PROVIDER, f"{text}; check the AwsCredentials of the S3Bucket block", status=status)
        if isinstance(status, int) and status >= 500:
            return ProviderUnavailable(_PROVIDER, text, status=status)
        if code == "NoSuchBucket" or (what == "HeadBucket" and code in ("404", "NotFound")):
            text = f"{what} failed: NoSuchBucket: the bucket does not exist"
            return ProviderRejected(_PROVIDER, f"{text}; create the bucket or fix bucket_name", status=status)
        return ProviderRejected(_PROVIDER, text, status=status)
    detail = redact(str(exc))[:300]
    return ProviderUnavailable(_PROVIDER, f"{what} failed: {type(exc).__name__}: {detail}")
