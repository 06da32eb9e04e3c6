"""What the calling tenant has spent and may spend."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentTenant, StateDep
from core.settings import get_settings
from usecases.budget import TenantSpend, usage

router = APIRouter(prefix="/api", tags=["usage"])


@router.get("/usage", response_model=TenantSpend)
def tenant_usage(tenant: CurrentTenant, state: StateDep) -> TenantSpend:
    """Tokens spent this month and runs started today, beside the tenant's budgets and when they reset."""
    return usage(state.store, state.store.ensure_tenant(tenant.id), get_settings())
