"""The contract every Generator passes (fsspec's abstract-test pattern).

The suite is a plain class (no ``Test`` prefix, so pytest does not collect it by itself). A generator runs it
by subclassing it in its own test module and providing the fixtures below::

    from tests.contracts.generator_suite import GeneratorContract

    class TestOpenAIGeneratorContract(GeneratorContract):
        @pytest.fixture
        def generator(self, fake: FakeOpenAI) -> Generator:
            fake.responder = app_responder(APP)
            return OpenAICompatibleGenerator(api_key=SecretStr(KEY), base_url=fake.api_url, model="gpt-test")

        @pytest.fixture
        def variant(self) -> dict[str, object]:
            return {"model": "gpt-other"}  # a non-secret setting that changes what is generated

        @pytest.fixture
        def misconfigured(self, fake: FakeOpenAI) -> Callable[[], Generator]:
            return lambda: OpenAICompatibleGenerator(api_key=SecretStr("wrong"), base_url=fake.api_url)

        @pytest.fixture
        def misconfiguration_hint(self) -> str:
            return "API key"  # what the error must name

Fixtures the suite itself provides (override any of them): ``sample_request`` (a small app to generate).

What the contract demands: the fingerprint (the cache key) is stable for a configuration, changes with any
non-secret setting and never with a secret; generated and repaired files obey the path rules of
:func:`core.files.validate_files`; ``worst_case_tokens`` is a bound budgets can trust (``max_output_tokens``
per answer, for the generation and each repair round) and a generation stays within it; preflight passes with
good configuration, and bad configuration fails — when the Block is built, or at preflight, never later — with
an error that names what is wrong and is not worth retrying.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from blocks.generators.base import GenerationRequest, Generator
from core.errors import PomBoltError
from core.files import GeneratedFile, check_path, validate_files

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _secret_fields(generator: Generator) -> list[str]:
    return [name for name in type(generator).model_fields if isinstance(getattr(generator, name), SecretStr)]


class GeneratorContract:
    """Tests every Generator passes; subclass it and provide the fixtures named in the module docstring."""

    # --- fixtures a generator provides or overrides -------------------------------------------------------
    @pytest.fixture
    def generator(self) -> Generator:
        """The Block under test, well configured: every generator overrides this."""
        pytest.fail("a GeneratorContract subclass must provide a 'generator' fixture")

    @pytest.fixture
    def variant(self) -> dict[str, Any]:
        """A change of one non-secret setting (field → new value) that must change the fingerprint."""
        pytest.fail("a GeneratorContract subclass must provide a 'variant' fixture")

    @pytest.fixture
    def misconfigured(self) -> Callable[[], Generator]:
        """Builds the generator with bad configuration: building it or its preflight must fail."""
        pytest.fail("a GeneratorContract subclass must provide a 'misconfigured' fixture")

    @pytest.fixture
    def misconfiguration_hint(self) -> str:
        """Words the error for the bad configuration must contain (what is wrong)."""
        pytest.fail("a GeneratorContract subclass must provide a 'misconfiguration_hint' fixture")

    @pytest.fixture
    def sample_request(self) -> GenerationRequest:
        """A small app to generate."""
        return GenerationRequest(
            requirements="A pomodoro timer with a task list and a dark mode", project_name="Contract Timer"
        )

    # --- fingerprint ----------------------------------------------------------------------------------
    def test_fingerprint_is_stable(self, generator: Generator) -> None:
        again = type(generator).model_validate(generator.model_dump())
        assert _HEX64.match(generator.fingerprint())
        assert generator.fingerprint() == generator.fingerprint() == again.fingerprint()

    def test_fingerprint_follows_every_non_secret_setting(self, generator: Generator, variant: dict[str, Any]) -> None:
        assert variant and not set(variant) & set(_secret_fields(generator))
        changed = type(generator).model_validate({**generator.model_dump(), **variant})
        assert changed.fingerprint() != generator.fingerprint()

    def test_fingerprint_never_holds_a_secret(self, generator: Generator) -> None:
        for name in _secret_fields(generator):
            other = type(generator).model_validate({**generator.model_dump(), name: SecretStr("another-secret")})
            assert other.fingerprint() == generator.fingerprint(), name

    # --- output ---------------------------------------------------------------------------------------
    def test_generated_files_obey_the_path_rules(self, generator: Generator, sample_request: GenerationRequest) -> None:
        result = generator.generate(sample_request)
        assert result.files and result.label
        assert len(validate_files(result.files)) == len(result.files)
        assert "index.html" in {f.path for f in result.files}
        for path in result.deleted:
            check_path(path)

    def test_repaired_files_obey_the_path_rules(self, generator: Generator, sample_request: GenerationRequest) -> None:
        files = generator.generate(sample_request).files
        broken = [f for f in files if f.path.endswith(".js")] or [GeneratedFile.text("app.js", "oops(")]
        result = generator.repair(sample_request, broken, {broken[0].path: "SyntaxError: unexpected end of input"})
        validate_files(result.files)
        for path in result.deleted:
            check_path(path)

    # --- cost -----------------------------------------------------------------------------------------
    def test_worst_case_is_a_bound_budgets_can_trust(self, generator: Generator) -> None:
        worst = generator.worst_case_tokens()
        assert isinstance(worst, int) and worst >= 0
        per_answer = getattr(generator, "max_output_tokens", None)
        if per_answer is not None:
            assert worst == per_answer * (1 + generator.max_repair_rounds) >= per_answer > 0
        more_rounds = generator.model_copy(update={"max_repair_rounds": generator.max_repair_rounds + 1})
        assert more_rounds.worst_case_tokens() >= worst

    def test_a_generation_stays_within_its_worst_case(
        self, generator: Generator, sample_request: GenerationRequest
    ) -> None:
        usage = generator.generate(sample_request).usage
        assert min(usage.calls, usage.prompt_tokens, usage.completion_tokens) >= 0
        if generator.worst_case_tokens() == 0:  # a generator that never pays reports nothing spent
            assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (0, 0, 0)
        else:
            assert usage.calls >= 1 and usage.completion_tokens <= generator.worst_case_tokens()

    # --- preflight ------------------------------------------------------------------------------------
    def test_preflight_passes_with_good_configuration(self, generator: Generator) -> None:
        generator.preflight()

    def test_bad_configuration_fails_clearly_by_preflight(
        self, misconfigured: Callable[[], Generator], misconfiguration_hint: str
    ) -> None:
        with pytest.raises((PomBoltError, ValidationError)) as info:
            misconfigured().preflight()
        assert misconfiguration_hint in str(info.value)
        if isinstance(info.value, PomBoltError):
            assert not info.value.retryable  # waiting never fixes a configuration
