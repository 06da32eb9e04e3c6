"""Use cases shared by the CLI and the API: validate a submission, then create its project and run.

Everything is validated before anything is written, so bad input leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from core.errors import ConfigError, IdempotencyConflict, InputError, PomBoltError, RequirementsInvalid
from core.models import IdempotencyRecord, Project, Run, RunKind, build_row, utcnow
from core.names import NAME_PATTERN, check_name
from core.settings import Settings
from core.store import Store

_SLUG = re.compile(r"[^a-z0-9]+")
_STOP = {"a", "an", "the", "with", "and", "for", "of", "to", "that", "which", "app", "web", "simple"}


class Submission(BaseModel):
    """A request to build an app: the body of ``POST /api/requirements``, and what ``pombolt run`` submits.

    The fields hold their shape here; :func:`submit_idempotent` checks the rest (text length, names) before
    anything is written.
    """

    model_config = ConfigDict(extra="forbid")

    requirements: str = Field(min_length=1, description="What the app should do, in plain words.")
    name: str | None = Field(None, pattern=NAME_PATTERN, description="Project name; an existing name adds a run.")
    generator: str | None = Field(None, pattern=NAME_PATTERN, description="Generator Block reference.")
    repository: str | None = Field(None, pattern=NAME_PATTERN, description="Repository Block reference, or 'none'.")
    target: str | None = Field(None, pattern=NAME_PATTERN, description="Deployment Block reference.")
    cleanup_on_failure: bool = Field(False, description="Remove what a failed run created.")


class SubmitResult(BaseModel):
    """The project and run a submission created or reused."""

    project_id: str
    run_id: str
    created_project: bool = Field(description="False when the name matched an existing project.")


# C0 control characters (U+0000-U+001F: NUL, escape sequences, backspace, bell...) other than tab, line feed
# and carriage return are refused: no one types them, and a NUL ends a C string in whatever reads the text
# next (a prompt, a log line, a terminal, a database driver).
_C0_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Other control and format characters are dropped (DEL, C1 controls, bidi overrides, zero-width spaces, and
# the carriage return of a CRLF), except line breaks, tabs and the two joiners, which are part of the text: ZWJ
# (U+200D) holds emoji sequences together (a family is one emoji, not three) and ZWNJ (U+200C) is spelling in
# Persian and Indic scripts.
_KEPT_CONTROLS = frozenset("\n\t\u200c\u200d")


def clean_requirements(text: str, settings: Settings, *, field: str | None = None) -> str:
    """Check, normalise and bound requirements text (NFC, trimmed, other control and format characters but line
    breaks, tabs and joiners dropped).

    Args:
        text: The text as sent.
        settings: Holds the length limit.
        field: The request field the text came in, named by the error (the API answers a field-level 422).

    Raises:
        RequirementsInvalid: When it holds a C0 control character other than tab, line feed and carriage return
            (NUL, ESC, ...), or is empty, whitespace only, or longer than the limit.
    """
    refused = _C0_REFUSED.search(text or "")
    if refused:
        raise RequirementsInvalid(
            f"requirements hold the control character U+{ord(refused.group()):04X} at character "
            f"{refused.start()}; send plain text (tabs and line breaks are fine)",
            field=field,
        )
    text = unicodedata.normalize("NFC", text or "").strip()
    text = "".join(c for c in text if c in _KEPT_CONTROLS or unicodedata.category(c)[0] != "C")
    if not text:
        raise RequirementsInvalid(
            "requirements are empty; describe the app you want, e.g. 'a pomodoro timer'", field=field
        )
    limit = settings.limits.max_requirements_chars
    if len(text) > limit:
        raise RequirementsInvalid(
            f"requirements are {len(text)} characters, over the {limit}-character limit; shorten them "
            "or raise POMBOLT_LIMIT_MAX_REQUIREMENTS_CHARS",
            field=field,
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
    return check_name(name, "project name")


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
    """SHA-256 of a submission's canonical JSON (what an ``Idempotency-Key`` is bound to).

    The canonical form keeps the ``"allow_workflows": false`` member the submission had when the first records
    were written (records never expire): a key used before that field left still matches its body.
    """
    return hashlib.sha256(to_json({**sub.model_dump(mode="json"), "allow_workflows": False})).hexdigest()


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
    checked = _check(sub, settings)  # an error is raised only once a replay is ruled out: a replay answers first
    found, existing = store.submission_lookup(
        tenant_id, key, checked[1] if isinstance(checked, tuple) else None, api_key_hash=api_key_hash
    )
    if found is not None:
        return (*_replay(store, found, fingerprint), False)
    if isinstance(checked, PomBoltError):
        raise checked
    text, name = checked
    if ensure_tenant:
        store.ensure_tenant(tenant_id)
    project, new_project, changed = _project_for(existing, tenant_id, name, sub, settings)
    run = _queued_run(project, text, request_id)
    if store.add_submission(new_project, run, _record(tenant_id, key, fingerprint, run), changed=changed):
        return project, run, True
    assert key is not None  # only a key another request took first makes add_submission answer False
    winner = store.find_idempotency(tenant_id, key)
    assert winner is not None
    return (*_replay(store, winner, fingerprint), False)


def _check(sub: Submission, settings: Settings) -> tuple[str, str] | PomBoltError:
    """The submission's clean requirements and project name, or what is wrong with them."""
    try:
        text = clean_requirements(sub.requirements, settings, field="requirements")
        return text, check_project_name(sub.name or derive_name(text))
    except (InputError, ConfigError) as exc:
        return exc


def _project_for(
    existing: Project | None, tenant_id: str, name: str, sub: Submission, settings: Settings
) -> tuple[Project, Project | None, tuple[Project, dict[str, Any]] | None]:
    """The run's project: ``(project, the row to insert or None, (row, changes) to write or None)``.

    A project found by name keeps its Block references unless the submission names others.
    """
    if existing is None:
        refs = refs_for(sub, settings)
        project = build_row(
            Project,
            tenant_id=tenant_id,
            name=name,
            generator_ref=refs.generator,
            repository_ref=refs.repository,
            target_ref=refs.target,
            cleanup_on_failure=sub.cleanup_on_failure,
            allow_workflows=settings.allow_workflows,
        )
        return project, project, None
    asked = {"generator_ref": sub.generator, "repository_ref": sub.repository, "target_ref": sub.target}
    changes: dict[str, Any] = {k: v for k, v in asked.items() if v and getattr(existing, k) != v}
    if not changes:
        return existing, None, None
    changes["updated_at"] = utcnow()
    return existing.model_copy(update={**changes, "version": existing.version + 1}), None, (existing, changes)


def _queued_run(project: Project, text: str, request_id: str | None) -> Run:
    """The new run (with ``build_row``, not the models' ``__init__``: this runs on every POST /api/requirements)."""
    return build_row(
        Run,
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=RunKind.create,
        requirements=text,
        **({"request_id": request_id} if request_id else {}),
    )


def _record(tenant_id: str, key: str | None, fingerprint: str, run: Run) -> IdempotencyRecord | None:
    """The idempotency record binding ``key`` to this body and run (None without a key)."""
    if key is None:
        return None
    return build_row(
        IdempotencyRecord,
        tenant_id=tenant_id,
        key=key,
        body_sha256=fingerprint,
        project_id=run.project_id,
        run_id=run.id,
    )
