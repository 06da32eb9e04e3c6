"""The submission model (the API's body too), its checks, and the fingerprint idempotency keys are bound to."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from core.errors import ConfigError, RequirementsInvalid
from core.settings import Settings
from usecases.submit import Submission, body_fingerprint, check_project_name, clean_requirements


def test_the_fingerprint_is_the_one_records_were_bound_to_before_the_models_merged() -> None:
    legacy = (
        '{"requirements":"a timer ⏱ \\n with \\"quotes\\"","name":"pomo","generator":null,"repository":null,'
        '"target":"netlify-main","cleanup_on_failure":true,"allow_workflows":false}'
    )
    sub = Submission(
        requirements='a timer ⏱ \n with "quotes"', name="pomo", target="netlify-main", cleanup_on_failure=True
    )
    assert body_fingerprint(sub) == hashlib.sha256(legacy.encode()).hexdigest()


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"requirements": ""}, "requirements"),
        ({"requirements": "x", "name": "Bad Name!"}, "name"),
        ({"requirements": "x", "target": "-x"}, "target"),
        ({"requirements": "x", "allow_workflows": True}, "allow_workflows"),  # operators decide that, not tenants
    ],
)
def test_the_model_refuses_malformed_fields(fields: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        Submission.model_validate(fields)
    assert [e["loc"][-1] for e in info.value.errors()] == [where]


def test_requirements_errors_name_the_field_they_came_in() -> None:
    settings = Settings()
    with pytest.raises(RequirementsInvalid) as info:
        clean_requirements(" \t ", settings, field="requirements")
    assert info.value.field == "requirements" and "empty" in info.value.message
    with pytest.raises(RequirementsInvalid) as unnamed:
        clean_requirements("", settings)
    assert unnamed.value.field is None
    with pytest.raises(ConfigError, match="project name 'Bad' is invalid"):
        check_project_name("Bad")
