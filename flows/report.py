"""report: the scheduled roll-up — publishes the keyed `cost-per-accepted-change` artifact so the
UI's Artifacts page shows its history over time."""

from __future__ import annotations

from prefect import flow

from blocks.ledger import Ledger
from blocks.pricing import Pricing
from blocks.rollups import window_start
from flows.artifacts import publish_fleet_artifact


@flow(name="report", log_prints=True)
def report(
    ledger: Ledger | None = None, pricing: Pricing | None = None, since: str | None = "30d"
) -> str:
    """Recompute cost per accepted change over the window ``since`` (e.g. 30d, or an ISO date)."""
    markdown = publish_fleet_artifact(ledger or Ledger(), pricing, window_start(since))
    print(markdown)
    return markdown
