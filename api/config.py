"""Settings of the API service, read from ``POMBOLT_API_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    db_threads: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Threads for the state-store calls of POST /api/requirements (default: 1 on SQLite, whose "
        "writers take turns anyway; 8 on PostgreSQL, where round trips overlap).",
    )
