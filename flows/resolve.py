"""resolve_issue: one change — plan, then implement ⇄ test ⇄ review up to N attempts, then merge.

A failed test, an edit that does not apply or a rejected review becomes the next attempt's
feedback. A change that runs out of attempts is recorded as rejected and its issue is labelled
for a person. Costs are read back from the ledger, never counted here.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel

from blocks.forge import Issue
from blocks.ledger import Ledger
from blocks.local_forge import LocalForge
from blocks.model_route import ModelRoute
from flows.artifacts import publish_change_artifacts, publish_fleet_artifact
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
    max_attempts: int = 3,
    test_command: str = "python -m pytest -q",
) -> ChangeReport:
    """Resolve issue ``repo#number`` into one merged pull request, or hand it to a person."""
    forge, route, ledger = forge or LocalForge(), route or default_route(), ledger or Ledger()
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

    the_plan = plan(ctx, forge, route, ledger)
    prior: list[EditBlock] = []
    feedback = ""
    accepted: tuple[Edits, TestResult, Verdict] | None = None
    attempt = 0
    for attempt in range(1, max_attempts + 1):
        edits = implement(ctx, forge, route, ledger, the_plan, attempt, feedback, prior)
        result = verdict = None
        if edits.ok:
            prior = edits.blocks
            result = run_tests(ctx, forge, edits, attempt)
            if result.passed:
                verdict = review(ctx, route, ledger, the_plan, edits, result, attempt)
                if verdict.approved:
                    accepted = (edits, result, verdict)
                    break
        feedback = _feedback(edits, result, verdict)
        print(f"{issue.ref} attempt {attempt} not accepted: {feedback.splitlines()[0]}")

    pr_url, pr_number = "", None
    if accepted is not None:
        edits, result, verdict = accepted
        outcome = merge(ctx, forge, ledger, edits, result, verdict, attempt)
        pr_url, pr_number = outcome.pr_url, outcome.pr_number
        if outcome.merged:
            ledger.finish_change(
                change.id,
                "accepted",
                pr=outcome.pr_number,
                merged_sha=outcome.merged_sha,
                lines_added=edits.lines_added,
                lines_removed=edits.lines_removed,
                attempts=attempt,
            )
        else:
            _hand_to_person(forge, ledger, ctx, issue, attempt, outcome.reason, pr_number)
    else:
        _hand_to_person(
            forge,
            ledger,
            ctx,
            issue,
            attempt,
            f"not accepted after {attempt} attempts: {feedback}",
            None,
        )

    publish_change_artifacts(ledger, change.id, pr_url)
    publish_fleet_artifact(ledger)
    final = ledger.change(change.id)
    totals = ledger.totals([change.id])
    return ChangeReport(
        ref=issue.ref,
        title=issue.title,
        change_id=change.id,
        status=final.status,
        attempts=final.attempts,
        tokens=totals.prompt_tokens + totals.completion_tokens,
        cost_usd=totals.cost_usd,
        pr_number=pr_number,
        reason=final.reason,
    )


def _hand_to_person(
    forge: LocalForge,
    ledger: Ledger,
    ctx: ChangeContext,
    issue: Issue,
    attempts: int,
    reason: str,
    pr: int | None,
) -> None:
    ledger.finish_change(ctx.change_id, "rejected", reason[:4000], attempts=attempts, pr=pr)
    forge.add_label(issue, NEEDS_HUMAN)
    forge.comment(
        issue.repo,
        issue.number,
        f"mergemeter could not resolve this ({branch_name(ctx)}): {reason.splitlines()[0]}\n"
        f"Spent: {cost_line(ledger, ctx.change_id)}; attempts: {attempts}. Labelled `{NEEDS_HUMAN}`.",
    )
