"""Use cases shared by the CLI and the API: validate a submission, then create its project and run.

Everything is validated before anything is written, so bad input leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from core.errors import ConfigError, IdempotencyConflict, InputError, PomBoltError, RequirementsInvalid
from core.models import IdempotencyRecord, Project, Run, RunKind, build_row, utcnow
from core.settings import Settings
from core.store import Store

_SLUG = re.compile(r"[^a-z0-9]+")
_STOP = {"a", "an", "the", "with", "and", "for", "of", "to", "that", "which", "app", "web", "simple"}


class Submission(BaseModel):
    """A request to build an app (from the CLI or ``POST /api/requirements``)."""

    requirements: str
    name: str | None = None
    generator: str | None = None
    repository: str | None = None
    target: str | None = None
    cleanup_on_failure: bool = False
    allow_workflows: bool = False


class SubmitResult(BaseModel):
    """The project and run a submission created or reused."""

    project_id: str
    run_id: str
    created_project: bool = Field(description="False when the name matched an existing project.")


# Control and format characters are dropped from requirements (NUL, escapes, bidi overrides, zero-width
# spaces), except line breaks, tabs and the two joiners, which are part of the text: ZWJ (U+200D) holds emoji
# sequences together (a family is one emoji, not three) and ZWNJ (U+200C) is spelling in Persian and Indic
# scripts.
_KEPT_CONTROLS = frozenset("\n\t\u200c\u200d")


def clean_requirements(text: str, settings: Settings) -> str:
    """Normalise and bound requirements text (NFC, trimmed, control and format characters but line breaks,
    tabs and joiners dropped).

    Raises:
        RequirementsInvalid: When empty, whitespace only, or longer than the limit.
    """
    text = unicodedata.normalize("NFC", text or "").strip()
    text = "".join(c for c in text if c in _KEPT_CONTROLS or unicodedata.category(c)[0] != "C")
    if not text:
        raise RequirementsInvalid("requirements are empty; describe the app you want, e.g. 'a pomodoro timer'")
    limit = settings.limits.max_requirements_chars
    if len(text) > limit:
        raise RequirementsInvalid(
            f"requirements are {len(text)} characters, over the {limit}-character limit; shorten them "
            "or raise POMBOLT_LIMIT_MAX_REQUIREMENTS_CHARS"
        )
    return text


def derive_name(requirements: str) -> str:
    """A project name from the first meaningful words of the requirements."""
    ascii_text = unicodedata.normalize("NFKD", requirements).encode("ascii", "ignore").decode().lower()
    words = [w for w in _SLUG.split(ascii_text) if w and w not in _STOP]
    return "-".join(words[:4])[:48].strip("-") or "app"


def check_project_name(name: str) -> str:
    """Validate a project name.

    Raises:
        ConfigError: When it is not 1-63 lowercase letters, digits and dashes.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
        raise ConfigError(f"project name {name!r} is invalid; use 1-63 lowercase letters, digits and dashes")
    return name


@dataclass
class Refs:
    """The Block references a project uses."""

    generator: str
    repository: str
    target: str


def refs_for(sub: Submission, settings: Settings) -> Refs:
    """The submission's Block references, with defaults from settings."""
    return Refs(
        generator=sub.generator or settings.default_generator,
        repository=sub.repository or settings.default_repository,
        target=sub.target or settings.default_target,
    )


def submit(
    store: Store, tenant_id: str, sub: Submission, settings: Settings, *, request_id: str | None = None
) -> tuple[Project, Run, bool]:
    """Create (or reuse, by name) the project and add a queued run (no idempotency key).

    A project found by name keeps its Block references unless the submission names others.
    """
    return submit_idempotent(store, tenant_id, sub, settings, key=None, request_id=request_id)


def body_fingerprint(sub: Submission) -> str:
    """SHA-256 of a submission's canonical JSON (what an ``Idempotency-Key`` is bound to)."""
    return hashlib.sha256(sub.model_dump_json().encode()).hexdigest()


def _replay(store: Store, record: IdempotencyRecord, fingerprint: str) -> tuple[Project, Run]:
    if record.body_sha256 != fingerprint:
        raise IdempotencyConflict(
            f"Idempotency-Key {record.key!r} was already used with a different request body; "
            "send the same body again, or use a new key for a new request"
        )
    return store.get_project(record.project_id), store.get_run(record.run_id)


def submit_idempotent(
    store: Store,
    tenant_id: str,
    sub: Submission,
    settings: Settings,
    *,
    key: str | None,
    request_id: str | None = None,
    ensure_tenant: bool = True,
    api_key_hash: str | None = None,
) -> tuple[Project, Run, bool]:
    """Like :func:`submit`, but project, run and idempotency record are written in one transaction.

    The same key with the same body returns the first run (third value ``False``: nothing new was
    written); the same key with another body raises :class:`IdempotencyConflict`. The idempotency record
    and the project of that name are read in one session, and everything written is written in one
    transaction (an existing project's changed Block references included, with its version check).

    Args:
        store: The state store.
        tenant_id: The submitting tenant.
        sub: The submission.
        settings: Limits and default Block references.
        key: The tenant's ``Idempotency-Key``, if any.
        request_id: The request id the run carries (default: a new one).
        ensure_tenant: Create the tenant row when absent; callers that just read the tenant (the API, from
            the request's key) pass False and save a query.
        api_key_hash: The hash of the API key the submission was made with: checked live (not revoked, this
            tenant's) in the same read as the lookups, before anything is written.

    Raises:
        RequirementsInvalid: Bad requirements text.
        ConfigError: Bad project name.
        IdempotencyConflict: The key was used for a different body.
        ConcurrentUpdate: Two requests created the same project name at once, or changed it (send again).
        KeyNotLive: ``api_key_hash`` is unknown, revoked, or another tenant's (nothing is written).
    """
    fingerprint = body_fingerprint(sub)
    invalid: PomBoltError | None = None  # raised only after a replay is ruled out: a replay answers first
    text = name = None
    try:
        text = clean_requirements(sub.requirements, settings)
        name = check_project_name(sub.name or derive_name(text))
    except (InputError, ConfigError) as exc:
        invalid = exc
    found, existing = store.submission_lookup(tenant_id, key, name, api_key_hash=api_key_hash)
    if found is not None:
        project, run = _replay(store, found, fingerprint)
        return project, run, False
    if invalid is not None:
        raise invalid
    assert text is not None and name is not None
    if ensure_tenant:
        store.ensure_tenant(tenant_id)
    changed: tuple[Project, dict[str, Any]] | None = None
    if existing is not None:
        changes: dict[str, Any] = {
            k: v
            for k, v in {
                "generator_ref": sub.generator,
                "repository_ref": sub.repository,
                "target_ref": sub.target,
            }.items()
            if v and getattr(existing, k) != v
        }
        project = existing
        if changes:
            changes["updated_at"] = utcnow()
            changed = (existing, changes)
            project = existing.model_copy(update={**changes, "version": existing.version + 1})
        new_project: Project | None = None
    else:
        refs = refs_for(sub, settings)
        project = new_project = build_row(
            Project,
            tenant_id=tenant_id,
            name=name,
            generator_ref=refs.generator,
            repository_ref=refs.repository,
            target_ref=refs.target,
            cleanup_on_failure=sub.cleanup_on_failure,
            allow_workflows=sub.allow_workflows or settings.allow_workflows,
        )
    # build_row, not the models' __init__: this runs on every POST /api/requirements
    run = build_row(
        Run,
        tenant_id=tenant_id,
        project_id=project.id,
        kind=RunKind.create,
        requirements=text,
        **({"request_id": request_id} if request_id else {}),
    )
    record = (
        build_row(
            IdempotencyRecord,
            tenant_id=tenant_id,
            key=key,
            body_sha256=fingerprint,
            project_id=project.id,
            run_id=run.id,
        )
        if key is not None
        else None
    )
    if store.add_submission(new_project, run, record, changed=changed):
        return project, run, True
    assert key is not None
    winner = store.find_idempotency(tenant_id, key)
    assert winner is not None
    project, run = _replay(store, winner, fingerprint)
    return project, run, False
