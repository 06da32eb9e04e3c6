"""OpenAICompatibleGenerator through the real openai SDK against a stateful fake over 127.0.0.1.

Every test asserts the exact number of requests the fake received.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from blocks.generators.base import GenerationRequest, Generator
from blocks.generators.openai_compat import OpenAICompatibleGenerator
from blocks.generators.prompts import PROMPT_VERSION
from core.errors import (
    AuthFailed,
    ConfigError,
    GenerationFailed,
    PathRuleViolation,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)
from core.files import validate_files
from core.settings import Limits
from tests.contracts.generator_suite import GeneratorContract
from tests.fakes.base import Response
from tests.fakes.openai import Answer, FakeOpenAI, app_responder, file_blocks, project_json

KEY = "sk-fake-INTEGRATION-5e1f0c9a7d"
APP = {
    "index.html": '<!doctype html><html><head><link rel="stylesheet" href="styles.css"></head>'
    '<body><h1>Timer</h1><script src="app.js"></script></body></html>',
    "styles.css": "h1 { color: teal; }",
    "app.js": "document.querySelector('h1').textContent = 'Ready';",
}
REQUEST = GenerationRequest(requirements="a pomodoro timer", project_name="pomo")
CHAT = r"/v1/chat/completions"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(tokens={KEY}) as svc:
        yield svc


def make(fake: FakeOpenAI, **overrides: object) -> OpenAICompatibleGenerator:
    options: dict[str, object] = {"api_key": KEY, "base_url": fake.api_url, "model": "gpt-test", "max_retries": 2}
    options.update(overrides)
    return OpenAICompatibleGenerator(**options)  # type: ignore[arg-type]


def error_json(status: int, message: str, code: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


class TestOpenAIGeneratorContract(GeneratorContract):
    @pytest.fixture
    def generator(self, fake: FakeOpenAI) -> Generator:
        fake.responder = app_responder(APP)
        return make(fake)

    @pytest.fixture
    def variant(self) -> dict[str, Any]:
        return {"model": "gpt-other"}

    @pytest.fixture
    def misconfigured(self, fake: FakeOpenAI) -> Callable[[], Generator]:
        return lambda: make(fake, api_key="sk-wrong-key-77777777")

    @pytest.fixture
    def misconfiguration_hint(self) -> str:
        return "rejected the API key"


# --- good paths ------------------------------------------------------------------------------------
def test_good_output_in_one_structured_call(fake: FakeOpenAI) -> None:
    fake.queue(project_json(APP))
    result = make(fake).generate(REQUEST)
    assert fake.calls() == 1 and fake.count() == 1
    assert {f.path: f.content.decode() for f in result.files} == APP
    sent = fake.last("POST", CHAT)
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    body = sent.json()
    assert body["response_format"]["type"] == "json_schema" and body["response_format"]["json_schema"]["strict"]
    assert body["model"] == "gpt-test" and body["max_tokens"] == 16_000
    assert "a pomodoro timer" in body["messages"][-1]["content"]
    usage = fake.completions[0].usage
    assert (result.usage.calls, result.usage.prompt_tokens, result.usage.completion_tokens) == (
        1,
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert "gpt-test" in result.label


def test_preflight_lists_models_and_pays_nothing(fake: FakeOpenAI) -> None:
    make(fake).preflight()
    assert fake.count("GET", r"/v1/models") == 1 and fake.calls() == 0
    with pytest.raises(ProviderRejected, match="'gpt-missing' is not offered") as info:
        make(fake, model="gpt-missing").preflight()
    assert "gpt-test" in info.value.message
    assert fake.count("GET", r"/v1/models") == 2 and fake.calls() == 0


def test_preflight_with_a_bad_key_fails_before_any_paid_call(fake: FakeOpenAI) -> None:
    with pytest.raises(AuthFailed, match="the LLM endpoint rejected the API key") as info:
        make(fake, api_key="sk-wrong-key-77777777").preflight()
    assert fake.count() == 1 and fake.calls() == 0
    assert "sk-wrong" not in str(info.value) and not info.value.retryable


def test_malformed_json_goes_back_once_with_the_complaint(fake: FakeOpenAI) -> None:
    fake.queue('{"files": [ {"path": "index.html", ', project_json(APP))
    result = make(fake).generate(REQUEST)
    assert fake.calls() == 2
    assert len(result.files) == 3 and result.usage.calls == 2
    second = fake.completions[1].messages
    assert second[-2]["role"] == "assistant" and "could not be read" in second[-1]["content"]
    assert result.usage.prompt_tokens == sum(c.usage["prompt_tokens"] for c in fake.completions)


def test_malformed_twice_fails_without_more_calls(fake: FakeOpenAI) -> None:
    fake.queue("not json", "still not json")
    with pytest.raises(GenerationFailed, match="does not follow the wire format after 2 attempt"):
        make(fake).generate(REQUEST)
    assert fake.calls() == 2


def test_json_schema_unsupported_falls_back_to_json_mode_and_remembers(fake: FakeOpenAI) -> None:
    fake.json_schema = False
    fake.queue(project_json(APP), project_json(APP))
    gen = make(fake)
    assert len(gen.generate(REQUEST).files) == 3
    assert [c.mode for c in fake.completions] == ["json_schema", "json_object"]
    assert [c.status for c in fake.completions] == [400, 200]
    make(fake).generate(REQUEST)  # a new Block for the same endpoint and model goes straight to JSON mode
    assert fake.calls() == 3 and fake.completions[2].mode == "json_object"


def test_no_json_support_falls_back_to_file_blocks(fake: FakeOpenAI) -> None:
    fake.json_schema = fake.json_object = False
    fake.queue(file_blocks(APP))
    result = make(fake).generate(REQUEST)
    assert [c.mode for c in fake.completions] == ["json_schema", "json_object", "text"]
    assert fake.calls() == 3 and result.usage.calls == 1
    assert "=== FILE:" in fake.completions[2].prompt  # the prompt describes the format it asks for
    assert {f.path: f.content.decode().rstrip("\n") for f in result.files} == APP


# --- failures that must not be retried --------------------------------------------------------------
def test_truncated_output_fails_fast_naming_max_output_tokens(fake: FakeOpenAI) -> None:
    fake.queue(Answer(project_json(APP)[:40], finish_reason="length"))
    with pytest.raises(GenerationFailed, match="max_output_tokens") as info:
        make(fake).generate(REQUEST)
    assert fake.calls() == 1 and not info.value.retryable


def test_401_is_auth_failed_once_and_never_shows_the_key(fake: FakeOpenAI) -> None:
    bad = "sk-not-the-right-key-123456789"
    fake.script("POST", CHAT, Response(401, error_json(401, f"Incorrect API key provided: {bad}.")))
    with pytest.raises(AuthFailed, match="the LLM endpoint rejected the API key") as info:
        make(fake, api_key=bad).generate(REQUEST)
    assert fake.calls() == 1
    assert bad not in str(info.value) and bad not in json.dumps(info.value.to_dict())
    assert not info.value.retryable


def test_unknown_model_is_named(fake: FakeOpenAI) -> None:
    with pytest.raises(ProviderRejected, match="model 'gpt-nope' was not found") as info:
        make(fake, model="gpt-nope").generate(REQUEST)
    assert fake.calls() == 1 and not info.value.retryable


def test_context_too_long_is_rejected_without_fallback(fake: FakeOpenAI) -> None:
    message = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."
    fake.script("POST", CHAT, Response(400, error_json(400, message, "context_length_exceeded")))
    with pytest.raises(ProviderRejected, match="longer than model 'gpt-test' accepts") as info:
        make(fake).generate(REQUEST)
    assert fake.calls() == 1 and not info.value.retryable


# --- retries: the SDK's own, with its count set --------------------------------------------------
def test_429_with_retry_after_is_honoured_then_succeeds(fake: FakeOpenAI) -> None:
    fake.script("POST", CHAT, Response(429, error_json(429, "slow down"), {"Retry-After": "0.3"}))
    fake.queue(project_json(APP))
    started = time.monotonic()
    result = make(fake).generate(REQUEST)
    assert time.monotonic() - started >= 0.3
    assert fake.calls() == 2 and result.usage.calls == 1


def test_429_that_persists_is_rate_limited_and_retryable(fake: FakeOpenAI) -> None:
    fake.script("POST", CHAT, Response(429, error_json(429, "slow down"), {"Retry-After": "0.01"}), times=3)
    with pytest.raises(RateLimited) as info:
        make(fake, max_retries=2).generate(REQUEST)
    assert fake.calls() == 3 and info.value.retryable  # 1 + max_retries, then the task layer decides


def test_500s_are_retried_by_the_sdk_then_succeed(fake: FakeOpenAI) -> None:
    fake.script("POST", CHAT, Response(500, error_json(500, "boom"), {"Retry-After": "0.01"}), times=2)
    fake.queue(project_json(APP))
    assert len(make(fake, max_retries=2).generate(REQUEST).files) == 3
    assert fake.calls() == 3


def test_500s_that_persist_are_provider_unavailable(fake: FakeOpenAI) -> None:
    fake.script("POST", CHAT, Response(503, error_json(503, "down"), {"Retry-After": "0.01"}), times=2)
    with pytest.raises(ProviderUnavailable) as info:
        make(fake, max_retries=1).generate(REQUEST)
    assert fake.calls() == 2 and info.value.retryable


def test_max_retries_zero_means_one_request(fake: FakeOpenAI) -> None:
    fake.script("POST", CHAT, Response(500, error_json(500, "boom")))
    with pytest.raises(ProviderUnavailable):
        make(fake, max_retries=0).generate(REQUEST)
    assert fake.calls() == 1


# --- untrusted output ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("../x", "no-parent-segments"),
        ("/etc/x", "relative"),
        (".git/config", "no-git-dir"),
        ("a/../../b", "no-parent-segments"),
        ("a\x00b", "no-control-characters"),
    ],
)
def test_hostile_paths_are_rejected_with_the_path_named(fake: FakeOpenAI, path: str, rule: str) -> None:
    fake.queue(project_json({"index.html": "<h1>x</h1>", path: "owned"}))
    result = make(fake).generate(REQUEST)
    with pytest.raises(PathRuleViolation) as info:
        validate_files(result.files)
    assert info.value.rule == rule and info.value.path == path.replace("\x00", "\\x00")
    assert fake.calls() == 1


def test_ten_thousand_files_are_rejected(fake: FakeOpenAI) -> None:
    fake.queue(Answer(project_json({f"f{i}.txt": "x" for i in range(10_000)}), completion_tokens=9_000))
    result = make(fake).generate(REQUEST)
    with pytest.raises(PathRuleViolation, match="more than 500 files"):
        validate_files(result.files, limits=Limits())
    assert fake.calls() == 1


def test_a_50_mb_file_is_rejected(fake: FakeOpenAI) -> None:
    fake.queue(Answer(project_json({"big.txt": "a" * (50 * 1024 * 1024)}), completion_tokens=100))
    result = make(fake).generate(REQUEST)
    with pytest.raises(PathRuleViolation, match=r"big\.txt.*max-file-size"):
        validate_files(result.files, limits=Limits())
    assert fake.calls() == 1


# --- repair, configuration, cache identity -----------------------------------------------------------
def test_repair_sends_failing_files_with_the_error_and_returns_fixes(fake: FakeOpenAI) -> None:
    fake.queue(project_json({"app.js": "console.log('fixed');"}, action="modify"))
    from core.files import GeneratedFile

    broken = [GeneratedFile.text("app.js", "function (")]
    result = make(fake).repair(REQUEST, broken, {"app.js": "JavaScript syntax error: Unexpected token '('"})
    assert fake.calls() == 1
    prompt = fake.completions[0].prompt
    assert "Unexpected token" in prompt and "function (" in prompt
    assert [(f.path, f.content) for f in result.files] == [("app.js", b"console.log('fixed');")]
    assert result.usage.calls == 1


def test_from_env_reads_the_usual_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAICompatibleGenerator.from_env()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("POMBOLT_LLM_MODEL", "llama3")
    gen = OpenAICompatibleGenerator.from_env()
    assert (gen.base_url, gen.model, gen.api_key.get_secret_value()) == ("http://127.0.0.1:9/v1", "llama3", KEY)


def test_fingerprint_covers_settings_and_prompts_but_not_the_key() -> None:
    a = OpenAICompatibleGenerator(api_key=KEY, model="m")  # type: ignore[arg-type]
    b = OpenAICompatibleGenerator(api_key="sk-other-key-000000", model="m")  # type: ignore[arg-type]
    c = OpenAICompatibleGenerator(api_key=KEY, model="m", temperature=0.9)  # type: ignore[arg-type]
    old = OpenAICompatibleGenerator(api_key=KEY, model="m", prompt_version="0")  # type: ignore[arg-type]
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert old.prompt_version == PROMPT_VERSION and old.fingerprint() == a.fingerprint()
    assert KEY not in a.model_dump_json() or "**" in a.model_dump_json()
    assert KEY not in json.dumps(a.model_dump(mode="json"))


def test_long_requirements_are_planned_then_written_one_file_per_call(fake: FakeOpenAI) -> None:
    from tests.fakes.openai import app_responder

    fake.responder = app_responder(APP)
    long_request = GenerationRequest(requirements="a timer. " * 40, project_name="pomo")
    gen = make(fake, plan_threshold_chars=100)
    assert gen.wants_plan(long_request) and not gen.wants_plan(REQUEST)
    result = gen.generate(long_request)
    assert fake.calls() == 1 + len(APP)
    assert fake.completions[0].prompt.startswith("Plan the app")
    assert sorted(c.asked_file for c in fake.completions[1:]) == sorted(APP)  # type: ignore[type-var]
    assert {f.path: f.content.decode() for f in result.files} == APP
    assert result.usage.calls == 4 == fake.paid()


def test_user_text_with_placeholders_stays_literal(fake: FakeOpenAI) -> None:
    fake.queue(project_json(APP))
    text = "show {{format}} and {{requirements}} as text"
    make(fake).generate(GenerationRequest(requirements=text, project_name="p"))
    assert fake.calls() == 1
    assert text in fake.completions[0].prompt


def test_403_is_auth_failed_too(fake: FakeOpenAI) -> None:
    fake.script("POST", CHAT, Response(403, error_json(403, "project has no access")))
    with pytest.raises(AuthFailed, match=r"rejected the API key \(HTTP 403\)"):
        make(fake).generate(REQUEST)
    assert fake.calls() == 1


def test_an_unreachable_endpoint_is_provider_unavailable() -> None:
    svc = FakeOpenAI(tokens={KEY}).start()
    url = svc.api_url
    svc.stop()  # nothing listens there any more
    gen = OpenAICompatibleGenerator(api_key=KEY, base_url=url, model="gpt-test", max_retries=0)  # type: ignore[arg-type]
    with pytest.raises(ProviderUnavailable, match="cannot reach") as info:
        gen.generate(REQUEST)
    assert info.value.retryable and svc.count() == 0
