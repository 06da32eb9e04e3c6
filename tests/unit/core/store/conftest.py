"""A fresh state store on a real SQLite file for each test of ``core.store``."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path}/x.db")
    s.init()
    return s
