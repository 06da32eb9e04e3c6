"""Pom-Bolt's error hierarchy, and the one table that maps an error code to an HTTP status.

Every error Pom-Bolt raises on purpose is a :class:`PomBoltError`. Each carries a stable ``code`` (for
APIs, the database and tests), a ``retryable`` flag (Prefect task retries consult it) and a message that
says what was wrong and what to do. Messages never contain secrets: errors are built from our own words
and redacted provider text, never from a raw request. The whole tree (``retry`` is the default flag,
``HTTP`` what :func:`http_status` answers; a unit test holds this drawing to the code):

    class                       code                        retry  HTTP  what went wrong
    PomBoltError                pombolt.error               no     500   the base of every error below
    ├── ConfigError             config.invalid              no     422   settings, Block references, names
    │   ├── UnknownBlock        config.unknown_block        no     422   a Block the tenant does not own
    │   └── DataDirUnwritable   config.data_dir_unwritable  no     500   the data dir cannot be written
    ├── InputError              input.invalid               no     422   what a user sent us
    │   ├── RequirementsInvalid input.requirements          no     422   requirements empty or too long
    │   ├── RunInProgress       input.run_in_progress       no     409   a change or rollback is in flight
    │   └── IdempotencyConflict input.idempotency_conflict  no     409   a key reused with another body
    ├── UnsafeOutput            output.unsafe               no     500   generated output is unsafe
    │   └── PathRuleViolation   output.path_rule            no     500   a generated file breaks a path rule
    ├── StateError              state.error                 no     409   the state store refused
    │   ├── NotFound            state.not_found             no     404   no such row (or another tenant's)
    │   ├── IllegalTransition   state.illegal_transition    no     409   the run state machine says no
    │   ├── ConcurrentUpdate    state.concurrent_update     yes    409   another writer changed the row first
    │   ├── KeyNotLive          state.key_not_live          no     401   the API key is unknown or revoked
    │   ├── NoLiveVersion       state.no_live_version       no     409   a change before the first version
    │   └── SchemaMismatch      state.schema                no     500   the database has another schema
    ├── StorageError            storage.error               yes    503   snapshots and blobs
    │   ├── SnapshotCorrupt     storage.snapshot_corrupt    no     500   a manifest is unreadable or wrong
    │   └── BlobMissing         storage.blob_missing        no     500   a snapshot's blob is gone
    ├── ProviderError           provider.error              no     502   an outside service (LLM, GitHub, ...)
    │   ├── AuthFailed          provider.auth               no     502   it rejected our credentials
    │   ├── RateLimited         provider.rate_limited       yes    503   it asked us to slow down
    │   ├── ProviderUnavailable provider.unavailable        yes    503   unreachable, or a 5xx
    │   ├── ProviderRejected    provider.rejected           no     502   a 4xx waiting will not fix
    │   └── Conflict            provider.conflict           no     502   the resource is someone else's
    ├── BudgetExceeded          budget.exceeded             no     402   a run would pass a spend limit
    └── PhaseFailed             phase.failed                no     500   a pipeline phase gave a definite "no"
        ├── GenerationFailed    phase.generate              no     500   the generator gave nothing usable
        ├── CheckFailed         phase.check                 no     500   static checks failed
        ├── BuildFailed         phase.build                 no     500   the build failed
        ├── DeployFailed        phase.deploy                no     500   the target reported a failed deploy
        ├── VerifyFailed        phase.verify                yes    500   the live URL did not serve the site
        └── Cancelled           phase.cancelled             no     500   the run was cancelled

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
        field: The input field at fault, when the error is about one (the API answers a field-level 422).
    """

    code: ClassVar[str] = "pombolt.error"
    default_retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, retryable: bool | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.default_retryable if retryable is None else retryable
        self.field = field

    def to_dict(self) -> dict[str, object]:
        """Return the error as a JSON-ready mapping (``code``, ``message``, ``retryable``)."""
        return {"code": self.code, "message": self.message, "retryable": self.retryable}

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable across Prefect result persistence and process boundaries.
        return (_rebuild, (type(self), self.message, self.retryable, self.field))


def _rebuild(cls: type[PomBoltError], message: str, retryable: bool, field: str | None = None) -> PomBoltError:
    err = cls.__new__(cls)
    PomBoltError.__init__(err, message, retryable=retryable, field=field)
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


class RunInProgress(InputError):
    """A project already has a change or rollback in flight."""

    code = "input.run_in_progress"


class IdempotencyConflict(InputError):
    """An ``Idempotency-Key`` was reused with a different request body."""

    code = "input.idempotency_conflict"


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


class NoLiveVersion(StateError):
    """A change asked of a project that has never gone live (the API answers 409: run it, or wait for it)."""

    code = "state.no_live_version"


class SchemaMismatch(StateError):
    """The database was created by another schema version."""

    code = "state.schema"


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


# --- spend ---------------------------------------------------------------------------------------
class BudgetExceeded(PomBoltError):
    """A run would pass a spend limit."""

    code = "budget.exceeded"


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


def is_retryable(exc: BaseException) -> bool:
    """Tell whether a Prefect task should retry after ``exc``.

    Our errors say so themselves; anything else (a bug, an unexpected library error) is not retried,
    so a deterministic failure does not burn retries.
    """
    return isinstance(exc, PomBoltError) and exc.retryable


# --- HTTP status ---------------------------------------------------------------------------------
#: Error code -> HTTP status. A ``<family>.*`` entry answers for every code of that family without an
#: entry of its own; a code of a family not listed answers :data:`FALLBACK_STATUS`.
HTTP_STATUS: dict[str, int] = {
    "config.*": 422,  # a setting, Block reference or name the caller chose
    "config.data_dir_unwritable": 500,  # the server's own disk
    "input.*": 422,
    "input.run_in_progress": 409,
    "input.idempotency_conflict": 409,
    "output.*": 500,
    "state.*": 409,
    "state.not_found": 404,
    "state.key_not_live": 401,
    "state.no_live_version": 409,
    "state.schema": 500,  # the server's database needs a migration
    "storage.*": 503,  # storage did not answer: try again
    "storage.snapshot_corrupt": 500,
    "storage.blob_missing": 500,
    "provider.*": 502,  # an outside service said no
    "provider.rate_limited": 503,  # ... or asked us to wait
    "provider.unavailable": 503,
    "budget.*": 402,
    "budget.exceeded": 402,
    "phase.*": 500,
}
FALLBACK_STATUS = 500


def status_for_code(code: str) -> int:
    """The HTTP status of an error code: its own entry in :data:`HTTP_STATUS`, else its family's, else 500."""
    exact = HTTP_STATUS.get(code)
    if exact is not None:
        return exact
    return HTTP_STATUS.get(code.partition(".")[0] + ".*", FALLBACK_STATUS)


def http_status(exc: BaseException) -> int:
    """The HTTP status the API answers ``exc`` with (500 for anything that is not a :class:`PomBoltError`)."""
    return status_for_code(exc.code) if isinstance(exc, PomBoltError) else FALLBACK_STATUS
