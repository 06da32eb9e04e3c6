"""Child of ``pombolt serve``: serves deployment ``requirements-to-deployment/default`` and runs its flow runs."""

from __future__ import annotations


def main() -> None:
    """Serve the pipeline flow as deployment ``default`` until stopped (SIGTERM pauses it)."""
    from core.runtime import configure_prefect_env

    configure_prefect_env()
    from flows.pipeline import requirements_to_deployment

    requirements_to_deployment.serve(name="default", print_starting_message=False)


if __name__ == "__main__":
    main()
