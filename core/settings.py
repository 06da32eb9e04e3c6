"""Pom-Bolt settings, read from ``POMBOLT_*`` environment variables.

One data dir holds everything local — the SQLite state store, snapshot storage, Prefect results,
local Git repositories, local sites and the static server's pidfile — so pointing
``POMBOLT_DATA_DIR`` elsewhere isolates a run fully.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import DataDirUnwritable


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pombolt"


class Limits(BaseSettings):
    """Bounds on input and generated output."""

    model_config = SettingsConfigDict(env_prefix="POMBOLT_LIMIT_", extra="ignore")

    max_requirements_chars: int = Field(20_000, description="Longest accepted requirements text.")
    max_files: int = Field(500, description="Most files one generation may produce.")
    max_file_bytes: int = Field(5 * 1024 * 1024, description="Largest single generated file.")
    max_total_bytes: int = Field(50 * 1024 * 1024, description="Largest total size of one snapshot.")
    max_path_chars: int = Field(255, description="Longest generated file path.")


class Timeouts(BaseSettings):
    """Time limits, in seconds, for every layer."""

    model_config = SettingsConfigDict(env_prefix="POMBOLT_TIMEOUT_", extra="ignore")

    http_connect: float = 10.0
    http_read: float = 60.0
    http_total_retry: float = Field(120.0, description="Most time the request layer spends retrying one call.")
    http_attempts: int = Field(5, description="Most attempts the request layer makes for one call.")
    http_max_wait: float = Field(60.0, description="Longest single Retry-After wait the request layer honours.")
    task_default: float = 600.0
    task_generate: float = 1800.0
    task_build: float = 900.0
    task_deploy: float = 900.0
    task_verify: float = 120.0
    flow: float = 3600.0
    verify_poll: float = 0.5
    task_retry_delay: float = Field(2.0, description="Base delay between Prefect task retries.")
    task_retries: int = Field(2, description="Prefect task retries for retryable errors.")


class BuildSettings(BaseSettings):
    """How npm builds of generated code are sandboxed (tasks/_build/sandbox.py, DESIGN §6)."""

    model_config = SettingsConfigDict(env_prefix="POMBOLT_BUILD_", extra="ignore")

    sandbox: Literal["required", "off"] = Field(
        "required",
        description="'required': every build runs in a bubblewrap sandbox and is refused when bwrap is missing; "
        "'off': build without it — honoured only for the local CLI tenant 'local'.",
    )
    memory_mb: int = Field(2048, ge=64, description="Most resident memory of all of a build's processes together.")
    cpu_seconds: int = Field(600, ge=1, description="Most CPU time of any one process of a build.")
    max_processes: int = Field(256, ge=8, description="Most processes a build may have at once.")
    max_file_bytes: int = Field(512 * 1024 * 1024, ge=1024 * 1024, description="Largest file a build may write.")
    max_disk_bytes: int = Field(
        4 * 1024 * 1024 * 1024, ge=16 * 1024 * 1024, description="Most disk a build's work dir may use."
    )
    tmp_mb: int = Field(256, ge=1, description="Size of the build's private /tmp and /dev/shm (memory-backed).")
    registry: str = Field(
        "https://registry.npmjs.org/",
        description="The one npm registry dependency install may reach (through an allow-listing proxy).",
    )
    install_network: bool = Field(
        True, description="Let dependency install reach the registry; false: install only from what is local."
    )
    lifecycle_scripts: bool = Field(
        False, description="Run npm lifecycle scripts (preinstall, postinstall, prebuild, ...); off by default."
    )

    @field_validator("registry", mode="after")
    @classmethod
    def _registry_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("POMBOLT_BUILD_REGISTRY must be an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("POMBOLT_BUILD_REGISTRY must not carry credentials: every build would see them")
        return value


class Settings(BaseSettings):
    """All of Pom-Bolt's configuration."""

    model_config = SettingsConfigDict(env_prefix="POMBOLT_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="Where everything local lives.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in the data dir.")
    storage_block: str | None = Field(
        None,
        description="Saved storage Block ('local-file-system/NAME' or 's3-bucket/NAME'); default a "
        "LocalFileSystem under the data dir.",
    )
    default_generator: str = "offline"
    default_repository: str = "local-git"
    default_target: str = "local-static"
    default_tenant: str = "local"
    static_host: str = "127.0.0.1"
    static_port: int = Field(0, description="Port of the local static server; 0 picks a free one.")
    allow_workflows: bool = Field(False, description="Allow generated .github/workflows/ files.")
    budget_monthly_tokens: int | None = Field(None, description="Default LLM tokens a tenant may spend per month.")
    budget_daily_runs: int | None = Field(None, description="Default runs a tenant may start per day.")
    budget_project_tokens: int | None = Field(None, description="Default LLM tokens one project may spend in all.")
    stuck_after_seconds: float = Field(
        7200.0, description="A dispatched or running run without progress this long is marked failed by the reconciler."
    )
    crash_restarts: int = Field(2, description="How often the reconciler restarts a run whose flow run crashed.")
    tenant_concurrency: int = Field(2, description="Concurrent runs per tenant (global concurrency limit tenant:<id>).")
    alert_webhook_url: str | None = Field(None, description="Webhook that receives alerts (see core/notify.py).")
    alert_block: str | None = Field(
        None, description="Saved notification Block for alerts ('slack-webhook/NAME'); wins over the webhook URL."
    )
    limits: Limits = Field(default_factory=Limits)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    build: BuildSettings = Field(default_factory=BuildSettings)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def db_url(self) -> str:
        """The state store URL (SQLite in the data dir unless configured)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'pombolt.db'}"

    @property
    def storage_dir(self) -> Path:
        """Default folder for snapshots and Prefect results."""
        return self.data_dir / "storage"

    def ensure_data_dir(self) -> Path:
        """Create the data dir and prove it is writable.

        Raises:
            DataDirUnwritable: When the folder cannot be created or written.
        """
        probe = self.data_dir / f".write-probe-{os.getpid()}-{threading.get_ident()}"
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.data_dir.chmod(0o700)  # it holds the state DB and Prefect's Block store: owner only
            probe.write_bytes(b"ok")
            probe.unlink(missing_ok=True)
        except OSError as exc:
            raise DataDirUnwritable(
                f"data dir {self.data_dir} is not writable ({exc.strerror or exc}); "
                "set POMBOLT_DATA_DIR to a folder you can write"
            ) from exc
        return self.data_dir


class ApiSettings(BaseSettings):
    """How the API answers, limits and dispatches."""

    model_config = SettingsConfigDict(env_prefix="POMBOLT_API_", extra="ignore")

    rate_limit: str = Field(
        "20/second", description="Per-tenant limit on POST /api/requirements, in `limits` notation."
    )
    max_body_bytes: int = Field(256 * 1024, description="Largest accepted request body.")
    dispatcher: bool = Field(False, description="Run the outbox dispatcher inside the API process.")
    dispatch_poll_seconds: float = Field(2.0, description="How often the dispatcher looks for queued runs.")
    prefect_ui_url: str | None = Field(None, description="Base URL of the Prefect UI for links (default: Prefect's).")
    deployment: str = Field("requirements-to-deployment/default", description="Deployment every run goes to.")
    public_url: str | None = Field(None, pattern=r"^https?://[^\s?#]+$", description="API URL for links, else relative")
    db_threads: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Threads for the state-store calls of POST /api/requirements (default: 1 on SQLite, whose "
        "writers take turns anyway; 8 on PostgreSQL, where round trips overlap).",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()
