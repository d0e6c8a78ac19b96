"""How a finished change announces itself: flow-run tags for the UI's filters and a Prefect event
(`mergemeter.change.accepted` / `.rejected` / `.abandoned`) that automations can act on.
"""

from __future__ import annotations

from typing import Any

from prefect import get_client
from prefect.events import emit_event


def event_name(status: str) -> str:
    kind = "abandoned" if status.startswith("abandoned") else status
    return f"mergemeter.change.{kind}"


def announce(
    report: dict[str, Any], route: str, flow_run_id: str, alert_usd: float | None = None
) -> None:
    """Tag the flow run with its route and outcome and emit the change's events."""
    status = report["status"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
        tags = sorted({*run.tags, f"route:{route}", f"outcome:{status}"})
        client.update_flow_run(flow_run_id, tags=tags)  # type: ignore[arg-type]
    names = [event_name(status)]
    if alert_usd is not None and report["cost_usd"] > alert_usd:
        names.append("mergemeter.change.costly")
    related = [
        {
            "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
            "prefect.resource.role": "flow-run",
        }
    ]
    for name in names:
        emit_event(
            event=name,
            resource={
                "prefect.resource.id": f"mergemeter.change.{report['change_id']}",
                "prefect.resource.name": report["ref"],
            },
            related=related,
            payload={**report, "route": route, "alert_usd": alert_usd},
        )
