"""A reconciler process: ``python -m ops.reconciler`` fails crashed and stuck runs until stopped."""

from __future__ import annotations

import logging

from core.runtime import configure_prefect_env, get_store
from core.settings import get_settings
from usecases.reconcile import Reconciler


def main() -> None:
    """Run a reconciler in the foreground (Ctrl-C stops it)."""
    logging.basicConfig(level=logging.INFO)
    settings = get_settings()
    configure_prefect_env(settings)
    try:
        Reconciler(get_store(settings), settings=settings).run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
