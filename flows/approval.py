"""The human approval gate: the run pauses before merging and the Prefect UI shows a form.

The reviewer approves or rejects with a comment (and may say how many minutes the review took).
The minutes are billed at the review rate as part of the change's cost; the time the change waited
and the decision are recorded beside them in the ledger.
"""

from __future__ import annotations

import time

from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from blocks.ledger import CostItem, Ledger
from blocks.pricing import Pricing


class Approval(RunInput):
    """A reviewer's decision on a pull request mergemeter wants to merge."""

    approve: bool = Field(description="Merge the pull request?")
    comment: str = Field(default="", description="Why; posted on the pull request when rejected.")
    review_minutes: float | None = Field(
        default=None, ge=0, description="Minutes the review took (default: the time it waited)."
    )


def wait_for_approval(
    ledger: Ledger,
    pricing: Pricing,
    change_id: int,
    pr_url: str,
    timeout_s: int = 7 * 24 * 3600,
    poll_s: int = 10,
) -> Approval:
    """Pause the flow run until a person answers, then bill the review time."""
    started = time.monotonic()
    approval = pause_flow_run(
        wait_for_input=Approval.with_initial_data(
            description=f"Review {pr_url} and approve or reject it.", approve=False
        ),
        timeout=timeout_s,
        poll_interval=poll_s,
        key=f"approval-{change_id}",
    )
    waited = (time.monotonic() - started) / 60
    minutes = approval.review_minutes if approval.review_minutes is not None else waited
    decision = "approved" if approval.approve else "rejected"
    ledger.record_cost_item(
        CostItem(
            key=f"{change_id}/review/approval",
            change_id=change_id,
            kind="review",
            quantity=minutes,
            unit="min",
            amount_usd=minutes * pricing.review_usd_per_hour / 60,
            note=f"{decision} after waiting {waited:.1f} min: {approval.comment}"[:2000],
        )
    )
    return approval
