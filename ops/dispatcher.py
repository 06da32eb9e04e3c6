"""A dispatcher process: ``python -m ops.dispatcher`` sends queued pool runs to Prefect until stopped."""

from __future__ import annotations

import logging

from core.runtime import configure_prefect_env, get_store
from core.settings import ApiSettings, get_settings
from usecases.dispatch import Dispatcher


def main() -> None:
    """Run a dispatcher alone, in the foreground (Ctrl-C stops it)."""
    logging.basicConfig(level=logging.INFO)
    settings = get_settings()
    configure_prefect_env(settings)
    api = ApiSettings()
    dispatcher = Dispatcher(get_store(settings), deployment=api.deployment, poll_seconds=api.dispatch_poll_seconds)
    try:
        dispatcher.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
