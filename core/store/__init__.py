"""The state store: every SQL query of Pom-Bolt, split by group of tables.

:class:`Store` is composed from one class per group, each over :class:`~core.store.engine.StoreEngine`
(the engine, schema management, sessions and the optimistic update):

- :mod:`core.store.engine`: the engine, SQLite settings, schema creation and checks, ``schemainfo``;
- :mod:`core.store.tenants`: ``tenant``, ``apikey``, ``blockbinding``;
- :mod:`core.store.projects`: ``project``, ``version``, ``livecheck``;
- :mod:`core.store.runs`: ``run``, ``phaserun``, the outbox claim, budget and metrics figures;
- :mod:`core.store.submissions`: ``idempotencyrecord`` and the submission hot path (with
  :mod:`core.store.prepared`).

Nothing outside this package opens a session or builds a query; callers use :class:`Store`'s methods.
"""

from __future__ import annotations

from core.errors import SchemaMismatch
from core.store.engine import SAFETY_NET_PAGES, StoreEngine, make_engine
from core.store.projects import ProjectStore
from core.store.runs import RunClaim, RunStore, TargetOutcome
from core.store.submissions import KEY_NOT_LIVE, SubmissionStore
from core.store.tenants import TenantStore, hash_key

__all__ = [
    "KEY_NOT_LIVE",
    "SAFETY_NET_PAGES",
    "RunClaim",
    "SchemaMismatch",
    "Store",
    "StoreEngine",
    "TargetOutcome",
    "hash_key",
    "make_engine",
]


class Store(TenantStore, ProjectStore, RunStore, SubmissionStore):
    """All reads and writes of Pom-Bolt's state.

    Args:
        url: SQLAlchemy database URL.
    """
