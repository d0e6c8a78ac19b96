"""resolve_issue: one change — plan, then implement ⇄ test ⇄ review up to N attempts, then merge.

A failed test, an edit that does not apply or a rejected review becomes the next attempt's
feedback. A change that runs out of attempts is recorded as rejected, one that would cross a
budget as abandoned-budget; either way its issue is labelled for a person. Costs are read back
from the ledger, never counted here.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel

from blocks.budget import Budget, BudgetExceeded
from blocks.ledger import Ledger
from blocks.local_forge import LocalForge
from blocks.model_route import ModelRoute
from blocks.pricing import Pricing
from blocks.rollups import rollup
from flows.artifacts import Progress, publish_change_artifacts, publish_fleet_artifact
from flows.outcome import announce
from mergemeter.sample import default_route
from tasks.edits import EditBlock
from tasks.implement import implement
from tasks.merge import branch_name, cost_line, merge
from tasks.models import ChangeContext, Edits, TestResult, Verdict
from tasks.plan import plan
from tasks.review import review
from tasks.run_tests import run_tests

NEEDS_HUMAN = "needs-human"


class ChangeReport(BaseModel):
    """What one resolve_issue run ended with (figures from the ledger)."""

    ref: str
    title: str
    change_id: int | None
    status: str
    attempts: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    pr_number: int | None = None
    reason: str = ""


def _run_name() -> str:
    params = flow_run.parameters
    return f"{params['repo']}#{params['number']} {params.get('title', '')}".strip()


def _feedback(edits: Edits, result: TestResult | None, verdict: Verdict | None) -> str:
    if not edits.ok:
        return f"Your edits did not apply: {edits.error}"
    if result is not None and not result.passed:
        return f"The tests failed ({result.failed_count} failed):\n{result.output_tail}"
    if verdict is not None and not verdict.approved:
        return "The reviewer requested changes:\n" + "\n".join(f"- {r}" for r in verdict.reasons)
    return ""


@flow(flow_run_name=_run_name, log_prints=True)
def resolve_issue(
    repo: str,
    number: int,
    title: str = "",
    forge: LocalForge | None = None,
    route: ModelRoute | None = None,
    ledger: Ledger | None = None,
    budget: Budget | None = None,
    pricing: Pricing | None = None,
    max_attempts: int = 3,
    test_command: str = "python -m pytest -q",
) -> ChangeReport:
    """Resolve issue ``repo#number`` into one merged pull request, or hand it to a person."""
    forge, route, ledger = forge or LocalForge(), route or default_route(), ledger or Ledger()
    pricing = pricing or Pricing()
    issue = forge.get_issue(repo, number)
    run_id = str(flow_run.id)
    if not forge.claim(issue, run_id):
        return ChangeReport(
            ref=issue.ref, title=issue.title, change_id=None, status="skipped", reason="claimed"
        )
    change = ledger.start_change(
        repo,
        number,
        issue.title,
        route.name,
        run_id,
        template="default",
        base_sha=forge.head_sha(repo),
    )
    assert change.id is not None
    ctx = ChangeContext(
        change_id=change.id,
        run_id=run_id,
        issue=issue,
        base_sha=change.base_sha,
        test_command=test_command,
    )
    progress = Progress(
        f"{issue.ref}: plan, up to {max_attempts} attempts, merge", steps=max_attempts + 2
    )

    status, reason, attempt, pr_url, pr_number = "rejected", "", 0, "", None
    fields: dict[str, object] = {}
    try:
        the_plan = plan(ctx, forge, route, ledger, budget)
        progress.advance()
        prior: list[EditBlock] = []
        feedback = ""
        accepted: tuple[Edits, TestResult, Verdict] | None = None
        for attempt in range(1, max_attempts + 1):
            edits = implement(ctx, forge, route, ledger, the_plan, attempt, feedback, prior, budget)
            result = verdict = None
            if edits.ok:
                prior = edits.blocks
                result = run_tests(ctx, forge, edits, attempt)
                rate = pricing.compute_usd_per_second
                ledger.record_compute(ctx.change_id, f"test/{attempt}", result.duration_s, rate)
                if result.passed:
                    verdict = review(ctx, route, ledger, the_plan, edits, result, attempt, budget)
                    if verdict.approved:
                        accepted = (edits, result, verdict)
                        break
            feedback = _feedback(edits, result, verdict)
            progress.advance()
            print(f"{issue.ref} attempt {attempt} not accepted: {feedback.splitlines()[0]}")
        reason = f"not accepted after {attempt} attempts: {feedback}"
        if accepted is not None:
            edits, result, verdict = accepted
            outcome = merge(ctx, forge, ledger, pricing, edits, result, verdict, attempt)
            pr_url, pr_number, reason = outcome.pr_url, outcome.pr_number, outcome.reason
            if outcome.merged:
                status = "accepted"
                fields = {
                    "merged_sha": outcome.merged_sha,
                    "lines_added": edits.lines_added,
                    "lines_removed": edits.lines_removed,
                }
    except BudgetExceeded as exc:
        status, reason = "abandoned-budget", f"stopped before a call that could cross the {exc}"

    ledger.finish_change(change.id, status, reason[:4000], attempts=attempt, pr=pr_number, **fields)
    if status != "accepted":
        _hand_to_person(forge, ledger, ctx, attempt, status, reason)
    progress.finish()
    publish_change_artifacts(ledger, change.id, pr_url, pricing)
    publish_fleet_artifact(ledger, pricing)
    _, spent = rollup(ledger, pricing, change_ids=[change.id])
    report = ChangeReport(
        ref=issue.ref,
        title=issue.title,
        change_id=change.id,
        status=status,
        attempts=attempt,
        tokens=spent.tokens,
        cost_usd=spent.total_usd,
        pr_number=pr_number,
        reason=reason,
    )
    announce(report.model_dump(), route.name, run_id, budget.alert_change_usd if budget else None)
    return report


def _hand_to_person(
    forge: LocalForge, ledger: Ledger, ctx: ChangeContext, attempts: int, status: str, reason: str
) -> None:
    forge.add_label(ctx.issue, NEEDS_HUMAN)
    forge.comment(
        ctx.issue.repo,
        ctx.issue.number,
        f"mergemeter could not resolve this ({status}, {branch_name(ctx)}): {reason.splitlines()[0]}\n"
        f"Spent: {cost_line(ledger, ctx.change_id)}; attempts: {attempts}. Labelled `{NEEDS_HUMAN}`.",
        key=f"change-{ctx.change_id}-handoff",
    )
