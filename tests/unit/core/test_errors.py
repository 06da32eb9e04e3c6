"""The error hierarchy: stable codes, retry flags, errors that survive pickling (Prefect persists them)."""

from __future__ import annotations

import copy
import pickle

import cloudpickle
import pytest

import core.errors as errors_module
import core.store  # defines SchemaMismatch, a PomBoltError of its own
from core.errors import (
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
    is_retryable,
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
    defined = {
        obj
        for obj in vars(errors_module).values()
        if isinstance(obj, type) and issubclass(obj, PomBoltError)
    }
    assert defined <= set(ALL_ERRORS)
    assert core.store.SchemaMismatch in ALL_ERRORS


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
