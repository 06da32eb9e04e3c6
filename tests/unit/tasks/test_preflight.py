"""Phase preflight: every Block the run uses proves its credentials before anything is paid for."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prefect.blocks.core import Block
from pydantic import SecretStr

from blocks.generators.openai_compat import OpenAICompatibleGenerator
from core.errors import AuthFailed
from core.models import Run
from tasks.preflight import preflight

REFS = {"generator": "offline", "repository": "local-git", "target": "local-static"}
PRINTS = {"generator": "g", "repository": "r", "target": "t"}


def test_the_generator_the_repository_and_the_target_are_checked(queue_run: Callable[..., Run]) -> None:
    report = preflight.fn(queue_run().id, REFS, PRINTS)
    assert report.checked == ["generator:offline", "repository:local-git", "target:local-static"]


def test_a_project_without_a_repository_checks_the_other_two(queue_run: Callable[..., Run]) -> None:
    report = preflight.fn(queue_run(repository_ref="none").id, {**REFS, "repository": "none"}, PRINTS)
    assert report.checked == ["generator:offline", "target:local-static"]


def test_a_rejected_key_fails_preflight_naming_it_and_is_not_retried(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str], serve_bodies: Callable[..., str]
) -> None:
    endpoint = serve_bodies([b'{"error": {"message": "Incorrect API key provided"}}'], status=401)
    save("llm", OpenAICompatibleGenerator(api_key=SecretStr("sk-wrong"), base_url=f"{endpoint}/v1", max_retries=0))
    run = queue_run(generator_ref="llm")
    with pytest.raises(AuthFailed) as info:
        preflight.fn(run.id, {**REFS, "generator": "llm"}, PRINTS)
    assert "API key" in info.value.message and not info.value.retryable
    assert "sk-wrong" not in str(info.value)
