"""``pombolt init``: register Block types, create the work pool and the global concurrency limits.

Provider rate limits are Prefect global concurrency limits used with ``strict=True``, so a missing
limit is an error rather than silently unlimited (DESIGN §5); this is where they are created.
"""

from __future__ import annotations

from collections.abc import Iterator

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, PrefectHTTPStatusError

from blocks.provider_limits import CLOUDFLARE_LIMIT, GITHUB_LIMIT, NETLIFY_LIMIT, VERCEL_LIMIT
from core.errors import ConfigError

WORK_POOL = "pombolt"

#: name -> (slots, slot decay per second). Decay makes a limit usable with ``rate_limit``:
#: github-api at 80 writes a minute is 80 slots refilled at 80/60 per second.
LIMITS: dict[str, tuple[int, float]] = {
    GITHUB_LIMIT: (80, 80 / 60),
    NETLIFY_LIMIT: (3, 3 / 60),
    CLOUDFLARE_LIMIT: (60, 1.0),
    VERCEL_LIMIT: (20, 20 / 60),
    "llm-api": (8, 0.0),
}


def block_classes() -> list[type[Block]]:
    """Every Pom-Bolt Block class that is importable in this install."""
    import importlib

    found: list[type[Block]] = []
    for module, name in (
        ("blocks.generators.offline", "OfflineTemplateGenerator"),
        ("blocks.generators.openai_compat", "OpenAICompatibleGenerator"),
        ("blocks.repositories.local_git", "LocalGitRepository"),
        ("blocks.repositories.github", "GitHubRepositoryTarget"),
        ("blocks.repositories.git_remote", "GitRemoteTarget"),
        ("blocks.targets.local_static", "LocalStaticSite"),
        ("blocks.targets.netlify", "NetlifySite"),
        ("blocks.targets.s3_website", "S3Website"),
        ("blocks.targets.cloudflare_pages", "CloudflarePagesSite"),
        ("blocks.targets.vercel", "VercelProject"),
        ("blocks.targets.github_pages", "GitHubPagesSite"),
    ):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return found


def ensure_limits() -> list[str]:
    """Create any missing global concurrency limit; return the names created."""
    created = []
    with get_client(sync_client=True) as client:
        for name, (slots, decay) in LIMITS.items():
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots, slot_decay_per_second=decay)
                )
                created.append(name)
            except (ObjectAlreadyExists, PrefectHTTPStatusError):
                continue
    return created


def bootstrap() -> Iterator[str]:
    """Do everything ``pombolt init`` does, yielding one line per step."""
    for cls in block_classes():
        cls.register_type_and_schema()
        yield f"block type {cls.get_block_type_slug()} registered"
    try:
        with get_client(sync_client=True) as client:
            try:
                client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
                yield f"work pool {WORK_POOL} (process) created"
            except ObjectAlreadyExists:
                yield f"work pool {WORK_POOL} exists"
    except PrefectHTTPStatusError as exc:
        raise ConfigError(f"could not create work pool {WORK_POOL}: {exc}") from exc
    for name in ensure_limits():
        yield f"global concurrency limit {name} created"
    from usecases.alerts import ensure_alerting, ensure_crash_detection

    yield from ensure_alerting()
    yield from ensure_crash_detection()
    yield "init done"
