"""review: diff + test result -> Verdict (approve / request_changes, with reasons)."""

from __future__ import annotations

import json

from blocks.budget import Budget
from blocks.ledger import Ledger
from blocks.model_route import ModelRoute
from tasks import faults
from tasks.llm import ask
from tasks.models import ChangeContext, Edits, Plan, TestResult, Verdict
from tasks.policy import model_step

SYSTEM = (
    "You review a pull request for correctness, scope and test coverage. Answer with JSON only: "
    '{"decision": "approve" | "request_changes", "reasons": [str]}.'
)


@model_step("review-attempt-{attempt}")
def review(
    ctx: ChangeContext,
    route: ModelRoute,
    ledger: Ledger,
    plan: Plan,
    edits: Edits,
    result: TestResult,
    attempt: int,
    budget: Budget | None = None,
) -> Verdict:
    faults.inject("review")
    prompt = (
        f"Issue {ctx.issue.ref}: {ctx.issue.title}\n\n{ctx.issue.body}\n\nPlan: {plan.summary}\n\n"
        f"Tests: {result.passed_count} passed, {result.failed_count} failed.\n\nDiff:\n{edits.diff}"
    )
    answer = ask(
        ctx,
        route,
        ledger,
        budget,
        step="review",
        attempt=attempt,
        role="reviewer",
        system=SYSTEM,
        prompt=prompt,
    )
    try:
        return Verdict.model_validate(json.loads(answer))
    except ValueError as exc:
        return Verdict(
            decision="request_changes", reasons=[f"the review answer was not a verdict: {exc}"]
        )
