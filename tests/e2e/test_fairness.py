"""Fairness: the global concurrency limit ``tenant:<id>`` (created on demand) caps one tenant's concurrent runs
and does not hold up another tenant. Real Prefect server (the session harness)."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from core.concurrency import ensure_tenant_limit, tenant_limit_name, tenant_slot


def test_the_limit_is_created_once_with_the_configured_slots() -> None:
    assert ensure_tenant_limit("fair-a") is True
    assert ensure_tenant_limit("fair-a") is False
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(tenant_limit_name("fair-a"))
    assert (limit.name, limit.limit, limit.active) == ("tenant:fair-a", 2, True)


def test_a_third_run_of_one_tenant_waits_while_another_tenant_goes_ahead() -> None:
    with tenant_slot("fair-b"), tenant_slot("fair-b"):
        with pytest.raises(TimeoutError), tenant_slot("fair-b", timeout_seconds=1):
            pass
        with tenant_slot("fair-c", timeout_seconds=5):  # another tenant is not held up
            pass
    with tenant_slot("fair-b", timeout_seconds=5):  # both slots were released
        pass
