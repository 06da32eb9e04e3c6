"""Pom-Bolt's error hierarchy.

Every error Pom-Bolt raises on purpose is a :class:`PomBoltError`. Each carries a stable ``code`` (for
APIs, the database and tests), a ``retryable`` flag (Prefect task retries consult it) and a message that
says what was wrong and what to do. Messages never contain secrets: errors are built from our own words
and redacted provider text, never from a raw request.

    PomBoltError
    ├── ConfigError                 config.*        (not retryable) settings, Blocks, data dir
    │   ├── UnknownBlock            config.unknown_block
    │   └── DataDirUnwritable       config.data_dir_unwritable
    ├── InputError                  input.*         (not retryable) what a user sent us
    │   └── RequirementsInvalid     input.requirements
    ├── UnsafeOutput                output.*        (not retryable) generated files break a path rule
    │   └── PathRuleViolation       output.path_rule
    ├── StateError                  state.*         the state store
    │   ├── NotFound                state.not_found
    │   ├── IllegalTransition       state.illegal_transition
    │   └── ConcurrentUpdate        state.concurrent_update   (retryable)
    ├── StorageError                storage.*       snapshots and blobs
    │   ├── SnapshotCorrupt         storage.snapshot_corrupt
    │   └── BlobMissing             storage.blob_missing
    ├── ProviderError               provider.*      an outside service (LLM, GitHub, Netlify, ...)
    │   ├── AuthFailed              provider.auth             (not retryable)
    │   ├── RateLimited             provider.rate_limited     (retryable)
    │   ├── ProviderUnavailable     provider.unavailable      (retryable)
    │   ├── ProviderRejected        provider.rejected         (not retryable: a 4xx we cannot fix by waiting)
    │   └── Conflict                provider.conflict         (not retryable: someone else's resource)
    └── PhaseFailed                 phase.*         a pipeline phase gave a definite "no"
        ├── CheckFailed             phase.check
        ├── BuildFailed             phase.build
        ├── DeployFailed            phase.deploy
        └── VerifyFailed            phase.verify              (retryable)

Lower-level exceptions are translated at the boundary with ``raise OurError(...) from exc``.
"""

from __future__ import annotations

from typing import ClassVar


class PomBoltError(Exception):
    """Base of every error Pom-Bolt raises on purpose.

    Attributes:
        code: Stable machine-readable code, e.g. ``provider.auth``.
        retryable: Whether retrying the same operation later may succeed.
        message: One line that says what was wrong and what to do.
    """

    code: ClassVar[str] = "pombolt.error"
    default_retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.default_retryable if retryable is None else retryable

    def to_dict(self) -> dict[str, object]:
        """Return the error as a JSON-ready mapping (``code``, ``message``, ``retryable``)."""
        return {"code": self.code, "message": self.message, "retryable": self.retryable}

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable across Prefect result persistence and process boundaries.
        return (_rebuild, (type(self), self.message, self.retryable))


def _rebuild(cls: type[PomBoltError], message: str, retryable: bool) -> PomBoltError:
    err = cls.__new__(cls)
    PomBoltError.__init__(err, message, retryable=retryable)
    return err


# --- configuration -------------------------------------------------------------------------------
class ConfigError(PomBoltError):
    """Settings, Block references or the local environment are wrong."""

    code = "config.invalid"


class UnknownBlock(ConfigError):
    """A Block reference does not name a Block the tenant owns."""

    code = "config.unknown_block"


class DataDirUnwritable(ConfigError):
    """The data dir cannot be created or written."""

    code = "config.data_dir_unwritable"


# --- input ---------------------------------------------------------------------------------------
class InputError(PomBoltError):
    """Something a user sent is invalid."""

    code = "input.invalid"


class RequirementsInvalid(InputError):
    """The requirements text is empty or too long."""

    code = "input.requirements"


# --- generated output ----------------------------------------------------------------------------
class UnsafeOutput(PomBoltError):
    """Generated output is unsafe or too large."""

    code = "output.unsafe"


class PathRuleViolation(UnsafeOutput):
    """A generated file breaks one of the path rules.

    Attributes:
        path: The offending path, made printable.
        rule: The name of the rule it breaks.
    """

    code = "output.path_rule"

    def __init__(self, path: str, rule: str, detail: str) -> None:
        self.path = path
        self.rule = rule
        # ``path`` is already printable (escaped by core.files); repr() would escape it a second time.
        super().__init__(f"generated file '{path}' breaks rule '{rule}': {detail}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_path_rule, (self.path, self.rule, self.message))


def _rebuild_path_rule(path: str, rule: str, message: str) -> PathRuleViolation:
    err = PathRuleViolation.__new__(PathRuleViolation)
    err.path, err.rule = path, rule
    PomBoltError.__init__(err, message)
    return err


# --- state store ---------------------------------------------------------------------------------
class StateError(PomBoltError):
    """The state store refused an operation."""

    code = "state.error"


class NotFound(StateError):
    """A row does not exist (or belongs to another tenant)."""

    code = "state.not_found"


class IllegalTransition(StateError):
    """A status change the run state machine does not allow."""

    code = "state.illegal_transition"


class ConcurrentUpdate(StateError):
    """Another writer changed the row first (optimistic concurrency)."""

    code = "state.concurrent_update"
    default_retryable = True


class KeyNotLive(StateError):
    """The API key a write was made under is unknown, revoked, or another tenant's (checked in the write's own read)."""

    code = "state.key_not_live"


# --- storage -------------------------------------------------------------------------------------
class StorageError(PomBoltError):
    """Snapshot storage failed."""

    code = "storage.error"
    default_retryable = True


class SnapshotCorrupt(StorageError):
    """A manifest cannot be parsed or does not match its id."""

    code = "storage.snapshot_corrupt"
    default_retryable = False


class BlobMissing(StorageError):
    """A snapshot refers to a blob that storage does not have."""

    code = "storage.blob_missing"
    default_retryable = False


# --- outside services ----------------------------------------------------------------------------
class ProviderError(PomBoltError):
    """An outside service (LLM, GitHub, Netlify, ...) failed.

    Attributes:
        provider: Short provider name, e.g. ``github``.
        status: HTTP status code when there was one.
    """

    code = "provider.error"

    def __init__(
        self, provider: str, message: str, *, status: int | None = None, retryable: bool | None = None
    ) -> None:
        self.provider = provider
        self.status = status
        super().__init__(f"{provider}: {message}", retryable=retryable)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_provider, (type(self), self.provider, self.message, self.status, self.retryable))


def _rebuild_provider(
    cls: type[ProviderError], provider: str, message: str, status: int | None, retryable: bool
) -> ProviderError:
    err = cls.__new__(cls)
    err.provider, err.status = provider, status
    PomBoltError.__init__(err, message, retryable=retryable)
    return err


class AuthFailed(ProviderError):
    """The provider rejected our credentials."""

    code = "provider.auth"


class RateLimited(ProviderError):
    """The provider asked us to slow down and the request layer ran out of patience."""

    code = "provider.rate_limited"
    default_retryable = True


class ProviderUnavailable(ProviderError):
    """The provider is unreachable or answered 5xx."""

    code = "provider.unavailable"
    default_retryable = True


class ProviderRejected(ProviderError):
    """The provider refused the request (4xx) for a reason waiting will not fix."""

    code = "provider.rejected"


class Conflict(ProviderError):
    """A remote resource exists but is not ours."""

    code = "provider.conflict"


# --- phases --------------------------------------------------------------------------------------
class PhaseFailed(PomBoltError):
    """A pipeline phase ended with a definite failure."""

    code = "phase.failed"


class GenerationFailed(PhaseFailed):
    """The generator produced no usable output."""

    code = "phase.generate"


class CheckFailed(PhaseFailed):
    """Generated files failed static checks (after any repair rounds)."""

    code = "phase.check"


class BuildFailed(PhaseFailed):
    """The project build failed."""

    code = "phase.build"


class DeployFailed(PhaseFailed):
    """The deployment target reported a failed deploy."""

    code = "phase.deploy"


class VerifyFailed(PhaseFailed):
    """The live URL did not serve the deployed site in time."""

    code = "phase.verify"
    default_retryable = True


class Cancelled(PhaseFailed):
    """The run was cancelled."""

    code = "phase.cancelled"


class SchemaMismatch(StateError):
    """The database was created by another schema version."""

    code = "state.schema"


class BudgetExceeded(PomBoltError):
    """A run would pass a spend limit."""

    code = "budget.exceeded"


class NoLiveVersion(StateError):
    """A change asked of a project that has never gone live (the API answers 409: run it, or wait for it)."""

    code = "state.no_live_version"


class RunInProgress(InputError):
    """A project already has a change or rollback in flight."""

    code = "input.run_in_progress"


class IdempotencyConflict(InputError):
    """An ``Idempotency-Key`` was reused with a different request body."""

    code = "input.idempotency_conflict"


def is_retryable(exc: BaseException) -> bool:
    """Tell whether a Prefect task should retry after ``exc``.

    Our errors say so themselves; anything else (a bug, an unexpected library error) is not retried,
    so a deterministic failure does not burn retries.
    """
    return isinstance(exc, PomBoltError) and exc.retryable
