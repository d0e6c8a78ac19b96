"""What a run shows in the Prefect UI: the per-call table, the change summary, the fleet figure."""

from __future__ import annotations

from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from blocks.ledger import Ledger

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


def publish_change_artifacts(ledger: Ledger, change_id: int, pr_url: str = "") -> None:
    """The change's calls as a table and its outcome as markdown, both from the ledger."""
    change = ledger.change(change_id)
    calls = ledger.calls(change_id)
    totals = ledger.totals([change_id])
    rows = [
        {
            "step": c.step,
            "attempt": c.attempt,
            "model": c.model,
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "cost_usd": round(c.cost_usd, 6),
            "ok": c.ok,
            "price_source": c.price_source,
        }
        for c in calls
    ]
    create_table_artifact(table=rows, description=f"Model calls of {change.repo}#{change.issue}")
    replay = (
        "  \n_All figures are replay-priced (offline replay model)._"
        if totals.replay_priced
        else ""
    )
    tokens = totals.prompt_tokens + totals.completion_tokens
    create_markdown_artifact(
        markdown=(
            f"### {change.repo}#{change.issue} {change.title}\n\n"
            f"| outcome | attempts | model calls | tokens | cost |\n|---|---|---|---|---|\n"
            f"| **{change.status}** | {change.attempts} | {totals.calls} | {tokens:,} | "
            f"{_money(totals.cost_usd)} |\n\n"
            f"Pull request: {pr_url or 'none'}  \nReason: {change.reason or '-'}{replay}"
        ),
        description=f"Outcome of {change.repo}#{change.issue}",
    )


def publish_fleet_artifact(ledger: Ledger) -> str:
    """Update the keyed fleet artifact from the ledger; returns its markdown."""
    groups = ledger.summary(by="route")
    totals = ledger.totals()
    accepted = sum(g.accepted for g in groups)
    total_cost = sum(g.total_cost_usd for g in groups)
    overall = total_cost / accepted if accepted else None
    replay = (
        "\n\n_Replay-priced: offline replay model, priced from litellm's price map._"
        if totals.replay_priced
        else ""
    )
    lines = [
        f"## Cost per accepted change: {_money(overall)}",
        "",
        f"{accepted} accepted of {sum(g.changes for g in groups)} changes; total cost "
        f"{_money(total_cost)} including rejected and abandoned attempts.",
        "",
        "| route | changes | accepted | total cost | cost per accepted change |",
        "|---|---|---|---|---|",
    ]
    for g in groups:
        lines.append(
            f"| {g.group} | {g.changes} | {g.accepted} | {_money(g.total_cost_usd)} | "
            f"{_money(g.cost_per_accepted_change)} |"
        )
    markdown = "\n".join(lines) + replay
    create_markdown_artifact(
        key=FLEET_KEY, markdown=markdown, description="Fleet cost per accepted change"
    )
    return markdown
