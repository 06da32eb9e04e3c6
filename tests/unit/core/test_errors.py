"""The error hierarchy: stable codes, retry flags, errors that survive pickling (Prefect persists them)."""

from __future__ import annotations

import copy
import inspect
import pickle
import re

import cloudpickle
import pytest

import core.errors as errors_module
from core.errors import (
    FALLBACK_STATUS,
    HTTP_STATUS,
    AuthFailed,
    BlobMissing,
    ConcurrentUpdate,
    Conflict,
    DataDirUnwritable,
    IllegalTransition,
    NotFound,
    PathRuleViolation,
    PomBoltError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    SnapshotCorrupt,
    StorageError,
    VerifyFailed,
    http_status,
    is_retryable,
    status_for_code,
)


def _all_error_classes() -> list[type[PomBoltError]]:
    """Every PomBoltError subclass defined in Pom-Bolt's own code (not in tests)."""
    seen: list[type[PomBoltError]] = []
    todo: list[type[PomBoltError]] = [PomBoltError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("core.") and cls not in seen:
            seen.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: c.__name__)


ALL_ERRORS = _all_error_classes()


def _instance(cls: type[PomBoltError]) -> PomBoltError:
    if issubclass(cls, PathRuleViolation):
        return cls("src/../x", "no-parent-segments", "'..' segments would escape the project")
    if issubclass(cls, ProviderError):
        return cls("github", "the token was refused", status=401)
    return cls(f"{cls.__name__} happened; do something about it")


def test_the_hierarchy_is_found_in_full() -> None:
    defined = {obj for obj in vars(errors_module).values() if isinstance(obj, type) and issubclass(obj, PomBoltError)}
    assert defined == set(ALL_ERRORS), "every error class lives in core/errors.py"


def test_every_error_class_has_its_own_code() -> None:
    codes = [cls.code for cls in ALL_ERRORS]
    duplicates = {c for c in codes if codes.count(c) > 1}
    assert not duplicates, f"codes shared by several classes: {duplicates}"


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_code_is_namespaced_under_the_parent_family(cls: type[PomBoltError]) -> None:
    family, _, name = cls.code.partition(".")
    assert family and name, cls.code
    parent = cls.__mro__[1]
    if parent is not PomBoltError and issubclass(parent, PomBoltError):
        assert family == parent.code.partition(".")[0]


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_pickling_keeps_type_code_message_and_retryable(cls: type[PomBoltError], dumps) -> None:
    err = _instance(cls)
    back = pickle.loads(dumps(err))
    assert type(back) is cls
    assert back.code == err.code
    assert back.message == err.message
    assert str(back) == str(err)
    assert back.retryable is err.retryable
    assert back.to_dict() == err.to_dict()


@pytest.mark.parametrize(
    "cls", [c for c in ALL_ERRORS if not issubclass(c, PathRuleViolation)], ids=lambda c: c.__name__
)
def test_an_explicit_retryable_flag_survives_pickling(cls: type[PomBoltError]) -> None:
    flipped = not cls.default_retryable
    if issubclass(cls, ProviderError):
        err: PomBoltError = cls("netlify", "x", retryable=flipped)
    else:
        err = cls("x", retryable=flipped)
    back = pickle.loads(pickle.dumps(err))
    assert back.retryable is flipped
    assert copy.copy(err).retryable is flipped


def test_provider_error_keeps_provider_and_status_through_pickling() -> None:
    err = RateLimited("github", "secondary rate limit, gave up after 5 attempts", status=429)
    back = pickle.loads(pickle.dumps(err))
    assert (back.provider, back.status) == ("github", 429)
    # the message is not prefixed twice on the way back
    assert back.message == "github: secondary rate limit, gave up after 5 attempts"


def test_path_rule_violation_keeps_path_and_rule_through_pickling() -> None:
    err = PathRuleViolation(".git/config", "no-git-dir", "files under .git/ are not allowed")
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.rule, back.message) == (err.path, err.rule, err.message)
    assert back.retryable is False


@pytest.mark.parametrize(
    "cls", [AuthFailed, RateLimited, ProviderUnavailable, ProviderRejected, Conflict, ProviderError]
)
def test_provider_error_messages_name_the_provider(cls: type[ProviderError]) -> None:
    err = cls("netlify", "site quota reached", status=422)
    assert str(err) == "netlify: site quota reached"
    assert err.to_dict()["message"].startswith("netlify: ")


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (ConcurrentUpdate("row moved on"), True),
        (RateLimited("github", "slow down"), True),
        (ProviderUnavailable("netlify", "502"), True),
        (VerifyFailed("live site still serves the old index"), True),
        (StorageError("S3 timed out"), True),
        (AuthFailed("github", "bad credentials"), False),
        (ProviderRejected("vercel", "422"), False),
        (Conflict("github", "repository exists and is not ours"), False),
        (SnapshotCorrupt("bad manifest"), False),
        (BlobMissing("blob gone"), False),
        (NotFound("no run"), False),
        (IllegalTransition("verified -> running"), False),
        (DataDirUnwritable("no"), False),
        (PathRuleViolation("../x", "no-parent-segments", "escapes"), False),
        (AuthFailed("github", "token expired mid-run", retryable=True), True),
        (ProviderUnavailable("netlify", "gone for good", retryable=False), False),
        (ValueError("a bug"), False),
        (RuntimeError("unexpected"), False),
        (KeyboardInterrupt(), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_retryable(err: BaseException, expected: bool) -> None:
    assert is_retryable(err) is expected


def test_to_dict_is_json_ready() -> None:
    assert ConcurrentUpdate("lost the race").to_dict() == {
        "code": "state.concurrent_update",
        "message": "lost the race",
        "retryable": True,
    }


# --- the drawn tree and the HTTP status table --------------------------------------------------------------------
_ROW = re.compile(
    r"^ {4}(?P<branch>(?:[│ ] {3}|[├└]── )*)(?P<name>[A-Z]\w+)\s+"
    r"(?P<code>[a-z_.]+)\s+(?P<retry>yes|no)\s+(?P<http>\d{3})\s"
)


def _drawn_tree() -> list[tuple[str, str | None, str, bool, int]]:
    """(class name, parent name, code, retryable, HTTP status) for each row drawn in core/errors.py's docstring."""
    rows: list[tuple[str, str | None, str, bool, int]] = []
    stack: list[str] = []
    for line in (errors_module.__doc__ or "").splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        depth = len(match["branch"]) // 4
        del stack[depth:]
        parent = stack[-1] if stack else None
        rows.append((match["name"], parent, match["code"], match["retry"] == "yes", int(match["http"])))
        stack.append(match["name"])
    return rows


def test_the_docstring_draws_every_class_once_under_its_parent_with_its_code_flag_and_status() -> None:
    drawn = _drawn_tree()
    names = [name for name, *_ in drawn]
    assert sorted(names) == sorted(cls.__name__ for cls in ALL_ERRORS), "the drawn tree lists every class, once"
    for name, parent, code, retryable, status in drawn:
        cls = getattr(errors_module, name)
        assert (parent or None) == (cls.__bases__[0].__name__ if cls is not PomBoltError else None), name
        assert (code, retryable, status) == (cls.code, cls.default_retryable, status_for_code(cls.code)), name


def test_classes_are_defined_in_the_order_the_tree_draws_them() -> None:
    """Each class sits with its siblings: the module reads in the order of its drawing."""
    drawn = [name for name, *_ in _drawn_tree()]
    by_line = sorted(drawn, key=lambda name: inspect.getsourcelines(getattr(errors_module, name))[1])
    assert by_line == drawn


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_has_a_status_of_its_own_or_a_deliberate_family_fallback(cls: type[PomBoltError]) -> None:
    if cls is PomBoltError:
        return  # the base: the fallback itself
    family = cls.code.partition(".")[0]
    assert cls.code in HTTP_STATUS or f"{family}.*" in HTTP_STATUS, f"add {cls.code!r} or '{family}.*' to HTTP_STATUS"


def test_every_status_table_entry_names_a_real_code_or_family() -> None:
    codes = {cls.code for cls in ALL_ERRORS}
    families = {code.partition(".")[0] for code in codes}
    for key, status in HTTP_STATUS.items():
        assert key in codes or (key.endswith(".*") and key[:-2] in families), f"stale HTTP_STATUS entry {key!r}"
        assert 400 <= status <= 599, key


@pytest.mark.parametrize(
    ("err", "status"),
    [
        (NotFound("no project 'x'"), 404),
        (errors_module.KeyNotLive("revoked"), 401),
        (errors_module.NoLiveVersion("not live yet"), 409),
        (ConcurrentUpdate("lost the race"), 409),
        (IllegalTransition("verified -> running"), 409),
        (errors_module.SchemaMismatch("old database"), 500),
        (errors_module.BudgetExceeded("over the monthly budget"), 402),
        (errors_module.RequirementsInvalid("empty"), 422),
        (errors_module.InputError("bad"), 422),
        (errors_module.RunInProgress("busy"), 409),
        (errors_module.IdempotencyConflict("other body"), 409),
        (errors_module.ConfigError("bad name"), 422),
        (errors_module.UnknownBlock("no such Block"), 422),
        (DataDirUnwritable("read-only"), 500),
        (RateLimited("github", "slow down"), 503),
        (ProviderRejected("netlify", "422"), 502),
        (StorageError("S3 timed out"), 503),
        (BlobMissing("gone"), 500),
        (VerifyFailed("old index"), 500),
        (PomBoltError("generic"), FALLBACK_STATUS),
        (ValueError("a bug"), 500),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_http_status(err: BaseException, status: int) -> None:
    assert http_status(err) == status


def test_an_unknown_family_falls_back_to_500() -> None:
    assert status_for_code("nobody.knows") == FALLBACK_STATUS == 500


def test_the_field_at_fault_survives_pickling() -> None:
    err = errors_module.RequirementsInvalid("requirements are empty", field="requirements")
    back = pickle.loads(pickle.dumps(err))
    assert (back.field, back.message) == ("requirements", err.message)
    assert errors_module.RequirementsInvalid("x").field is None
