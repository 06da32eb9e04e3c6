"""Alerting: Prefect automations that send a notification Block a message when something needs a human.

Three automations, created (or brought up to date) idempotently by name:

- ``pombolt-alert-run-failed``: a phase of a run failed after its retries (``pombolt.run.<phase>.failed``,
  emitted once per failed run by ``flows/tracking.py``) — project, run, phase, error code and message;
- ``pombolt-alert-run-crashed``: a flow run of ours ``Crashed`` (its worker died; the reconciler restarts it,
  so several of these in a row are a crash loop);
- ``pombolt-alert-site-check-failed``: flow ``verify-live-sites`` found a live site that no longer serves its
  version (``pombolt.site.check.failed``).

Each message carries a link to the flow run in the Prefect UI. The notification Block is any saved Prefect
notification Block (Slack, e-mail, Teams, …) named by ``POMBOLT_ALERT_BLOCK`` (``slug/name``), or else a
``CustomWebhookNotificationBlock`` that posts ``{"subject": ..., "body": ...}`` to ``POMBOLT_ALERT_WEBHOOK_URL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from core.errors import ConfigError, UnknownBlock
from core.settings import Settings, get_settings

#: Name under which the default webhook Block is saved.
WEBHOOK_BLOCK_NAME = "pombolt-alerts"

_LINK = "{{ flow_run|ui_url }}"


@dataclass(frozen=True)
class AlertRule:
    """One automation: what triggers it and what the message says."""

    name: str
    description: str
    expect: str
    subject: str
    body: str
    match_related: dict[str, str] | None = None


RULES: tuple[AlertRule, ...] = (
    AlertRule(
        name="pombolt-alert-run-failed",
        description="A Pom-Bolt run failed in a phase after its retries.",
        expect="pombolt.run.*.failed",
        subject="Pom-Bolt: run failed in {{ event.payload.phase }} ({{ event.resource['prefect.resource.name'] }})",
        body=(
            "project: {{ event.resource['prefect.resource.name'] }} ({{ event.resource['pombolt.project.id'] }})\n"
            "run: {{ event.resource['prefect.resource.id'] | replace('pombolt.run.', '') }}\n"
            "phase: {{ event.payload.phase }}\n"
            "error: {{ event.payload.code }} {{ event.payload.message }}\n"
            "request id: {{ event.resource['pombolt.request.id'] }}\n"
            f"flow run: {_LINK}\n"
        ),
    ),
    AlertRule(
        name="pombolt-alert-run-crashed",
        description="A Pom-Bolt flow run crashed (its worker or process died).",
        expect="prefect.flow-run.Crashed",
        match_related={"prefect.resource.id": "prefect.tag.pombolt"},
        subject="Pom-Bolt: flow run {{ flow_run.name }} crashed",
        body=(
            "run: {{ flow_run.parameters.run_id }}\n"
            "phase: unknown (the process died)\n"
            "message: {{ flow_run.state.message }}\n"
            f"flow run: {_LINK}\n"
            "The reconciler restarts it from cache; repeated crashes of one run are a crash loop.\n"
        ),
    ),
    AlertRule(
        name="pombolt-alert-site-check-failed",
        description="A live site no longer serves the version Pom-Bolt deployed.",
        expect="pombolt.site.check.failed",
        subject="Pom-Bolt: live site check failed ({{ event.payload.url }})",
        body=(
            "project: {{ event.resource['pombolt.project.id'] }}\n"
            "run: {{ event.resource['pombolt.run.id'] }} (version {{ event.payload.version }})\n"
            "phase: {{ event.payload.phase }}\n"
            "message: {{ event.payload.message }}\n"
            f"flow run: {_LINK}\n"
        ),
    ),
)


def notification_block(settings: Settings | None = None) -> Any | None:
    """The notification Block alerts go to, saving the default webhook Block when only a URL is configured.

    Returns:
        The Block, or None when alerting is not configured.

    Raises:
        UnknownBlock: When ``POMBOLT_ALERT_BLOCK`` names a Block that was not saved.
    """
    settings = settings or get_settings()
    from prefect.blocks.core import Block

    if settings.alert_block:
        try:
            return Block.load(settings.alert_block)
        except ValueError as exc:
            raise UnknownBlock(
                f"notification Block {settings.alert_block!r} was not found; save it (e.g. a SlackWebhook) "
                "or unset POMBOLT_ALERT_BLOCK"
            ) from exc
    if not settings.alert_webhook_url:
        return None
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name=WEBHOOK_BLOCK_NAME,
        url=settings.alert_webhook_url,
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        timeout=10,
    )
    block.save(WEBHOOK_BLOCK_NAME, overwrite=True)
    return block


def _automation(rule: AlertRule, block_document_id: UUID) -> Any:
    from datetime import timedelta

    from prefect.automations import AutomationCore
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    trigger = EventTrigger(
        expect={rule.expect},
        match_related=ResourceSpecification(rule.match_related or {}),
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )
    action = SendNotification(block_document_id=block_document_id, subject=rule.subject, body=rule.body)
    return AutomationCore(name=rule.name, description=rule.description, trigger=trigger, actions=[action])


def ensure_alerting(settings: Settings | None = None) -> list[str]:
    """Create or update the alert automations (idempotent); return one line per automation.

    Returns:
        What was done, or one line saying alerting is not configured.

    Raises:
        ConfigError: When the notification Block cannot be used.
    """
    block = notification_block(settings)
    if block is None:
        return ["alerting not configured (set POMBOLT_ALERT_WEBHOOK_URL or POMBOLT_ALERT_BLOCK)"]
    block_id = getattr(block, "_block_document_id", None)
    if block_id is None:
        raise ConfigError("the notification Block has no saved document; save it before creating alerts")
    from prefect.client.orchestration import get_client

    done = []
    with get_client(sync_client=True) as client:
        for rule in RULES:
            wanted = _automation(rule, block_id)
            existing = client.read_automations_by_name(rule.name)
            if existing:
                client.update_automation(existing[0].id, wanted)
                for extra in existing[1:]:  # two inits raced: keep one
                    client.delete_automation(extra.id)
                done.append(f"automation {rule.name} updated")
            else:
                client.create_automation(wanted)
                done.append(f"automation {rule.name} created")
    return done


ZOMBIE_AUTOMATION = "pombolt-zombie-flow-runs"


def ensure_crash_detection(within_seconds: float = 120.0) -> list[str]:
    """Create (idempotently) Prefect's zombie detector: a running flow run with no heartbeat → ``Crashed``.

    Workers must send heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, e.g. 30 s, below ``within_seconds``);
    the reconciler then restarts the crashed run, which resumes from cache.
    """
    from datetime import timedelta

    from prefect.automations import Automation, ChangeFlowRunState, EventTrigger, Posture
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        if client.read_automations_by_name(ZOMBIE_AUTOMATION):
            return [f"automation {ZOMBIE_AUTOMATION} exists"]
    Automation(
        name=ZOMBIE_AUTOMATION,
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_seconds),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message="no heartbeat: its worker died")],
    ).create()
    return [f"automation {ZOMBIE_AUTOMATION} created"]
