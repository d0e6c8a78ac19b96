"""What a run shows in the Prefect UI: the per-call table, the change summary, the fleet figure."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from blocks.ledger import Ledger
from blocks.pricing import Pricing
from blocks.rollups import rollup
from mergemeter import report

FLEET_KEY = "cost-per-accepted-change"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.4f}"


class Progress:
    """The run's progress artifact: it moves while the change runs."""

    def __init__(self, description: str, steps: int) -> None:
        self.steps, self.done = steps, 0
        self.id: UUID = create_progress_artifact(progress=0.0, description=description)

    def advance(self) -> None:
        self.done = min(self.done + 1, self.steps)
        update_progress_artifact(self.id, progress=100.0 * self.done / self.steps)

    def finish(self) -> None:
        update_progress_artifact(self.id, progress=100.0)


def publish_change_artifacts(
    ledger: Ledger, change_id: int, pr_url: str = "", pricing: Pricing | None = None
) -> None:
    """The change's calls as a table and its outcome as markdown, both from the ledger."""
    change = ledger.change(change_id)
    calls = ledger.calls(change_id)
    totals = ledger.totals([change_id])
    _, spent = rollup(ledger, pricing, change_ids=[change_id])  # the full cost, as the CLI shows
    rows = [
        {
            "step": c.step,
            "attempt": c.attempt,
            "model": c.model,
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "cached_tokens": c.cached_tokens,
            "cost_usd": round(c.cost_usd, 6),
            "ok": c.ok,
            "price_source": c.price_source,
        }
        for c in calls
    ]
    create_table_artifact(table=rows, description=f"Model calls of {change.repo}#{change.issue}")
    replay = (
        "  \n_Model figures are replay-priced (offline replay model)._"
        if totals.replay_priced
        else ""
    )
    create_markdown_artifact(
        markdown=(
            f"### {change.repo}#{change.issue} {change.title}\n\n"
            f"| outcome | attempts | model calls | tokens | cost |\n|---|---|---|---|---|\n"
            f"| **{change.status}** | {change.attempts} | {totals.calls} | {spent.tokens:,} | "
            f"{_money(spent.total_usd)} |\n\n"
            f"Cost: model tokens {_money(spent.tokens_usd)} + test compute "
            f"{_money(spent.compute_usd)} + human review {_money(spent.review_usd)}.  \n"
            f"Pull request: {pr_url or 'none'}  \nReason: {change.reason or '-'}{replay}"
        ),
        description=f"Outcome of {change.repo}#{change.issue}",
    )


def publish_fleet_artifact(
    ledger: Ledger, pricing: Pricing | None = None, since: datetime | None = None
) -> str:
    """Update the keyed fleet artifact (table + markdown) from the ledger; returns the markdown."""
    rows, total = rollup(ledger, pricing, by="route", since=since)
    window = f"since {since:%Y-%m-%d %H:%M} UTC" if since else "all time"
    replay = (
        "\n\n_Model figures are replay-priced: offline replay model, litellm's price map._"
        if ledger.totals().replay_priced
        else ""
    )
    markdown = (
        f"## Cost per accepted change: {_money(total.cost_per_accepted_change)}\n\n"
        f"Window: {window}. "
        f"{total.accepted} accepted of {total.changes} changes; total cost {_money(total.total_usd)} "
        "including rejected and abandoned attempts "
        f"(model tokens {_money(total.tokens_usd)}, test compute {_money(total.compute_usd)}, "
        f"human review {_money(total.review_usd)}, GPU {_money(total.gpu_usd)}, "
        f"subscriptions {_money(total.subscription_usd)}).\n\n"
        + report.markdown_table(rows, total, "route")
        + replay
    )
    create_markdown_artifact(
        key=FLEET_KEY, markdown=markdown, description="Fleet cost per accepted change"
    )
    create_table_artifact(
        key=f"{FLEET_KEY}-table",
        table=[r.as_dict() for r in [*rows, total]],
        description="Cost per accepted change by route (last row: all routes)",
    )
    return markdown
