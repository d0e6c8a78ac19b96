"""merge: push the branch, open the pull request, test the merge result, merge, close the issue.

A change is merged only if its tests passed, its review approved, and the tests pass again on the
result of merging it into the *current* base (main stays green). Every forge call here is
idempotent, so a retried merge neither opens a second pull request nor merges twice.
"""

from __future__ import annotations

import re

from prefect import task

from blocks import git
from blocks.forge import AlreadyMerged, BaseMoved, Forge, MergeRefused
from blocks.ledger import Ledger
from blocks.pricing import Pricing
from blocks.rollups import rollup
from tasks import faults
from tasks.models import ChangeContext, Edits, MergeOutcome, TestResult, Verdict
from tasks.policy import retry_when
from tasks.workspace import checkout, run_test_command


def branch_name(ctx: ChangeContext) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", ctx.issue.title.lower()).strip("-")[:40].strip("-")
    unit = f"-unit-{ctx.unit}" if ctx.unit else ""
    return f"mergemeter/{ctx.issue.number}{unit}-{slug}"


def cost_line(ledger: Ledger, change_id: int) -> str:
    """The change's full cost so far, from the ledger (model tokens plus test compute)."""
    totals = ledger.totals([change_id])
    _, change = rollup(ledger, change_ids=[change_id])
    replay = " (replay-priced)" if totals.replay_priced else ""
    tokens = totals.prompt_tokens + totals.completion_tokens
    return (
        f"${change.total_usd:.4f}{replay} (model ${change.tokens_usd:.4f}, test compute "
        f"${change.compute_usd:.4f}) over {totals.calls} model calls, {tokens:,} tokens"
    )


@task(
    retries=3,
    retry_delay_seconds=[1, 2, 5],
    retry_condition_fn=retry_when(lambda exc: isinstance(exc, BaseMoved)),
    task_run_name="merge",
)
def merge(
    ctx: ChangeContext,
    forge: Forge,
    ledger: Ledger,
    pricing: Pricing,
    edits: Edits,
    result: TestResult,
    verdict: Verdict,
    attempts: int,
    open_only: bool = False,
) -> MergeOutcome:
    """Merge the approved change; with ``open_only``, push it and open the pull request only."""
    faults.inject("merge")
    if not (edits.ok and result.passed and verdict.approved):
        return MergeOutcome(
            merged=False, reason="not merged: tests must pass and the review approve"
        )
    issue, branch = ctx.issue, branch_name(ctx)
    with checkout(forge, issue.repo, ctx.base_sha, edits.blocks) as workspace:
        unit = f" (unit {ctx.unit} of {ctx.unit_count}: {ctx.unit_summary})" if ctx.unit else ""
        git.commit_all(workspace, f"{issue.title}{unit}\n\nResolves #{issue.number}.")
        forge.push(workspace, branch)
    closes = (
        f"Closes #{issue.number}."
        if ctx.last_unit
        else f"Part {ctx.unit} of {ctx.unit_count} of #{issue.number}."
    )
    body = (
        f"{closes}\n\nPlanned, written and reviewed by mergemeter.\n"
        f"Cost so far: {cost_line(ledger, ctx.change_id)}; attempts: {attempts}."
    )
    title = f"{issue.title} ({ctx.unit}/{ctx.unit_count})" if ctx.unit else issue.title
    pr = forge.open_pull_request(issue, branch, title, body)
    outcome = MergeOutcome(merged=False, pr_number=pr.number, pr_url=pr.url)
    if open_only:
        return outcome.model_copy(update={"reason": "pull request opened, not merged"})
    if pr.state == "merged":
        return _close(
            ctx,
            forge,
            ledger,
            outcome.model_copy(update={"merged": True, "merged_sha": pr.merged_sha}),
            attempts,
        )

    base = forge.head_sha(issue.repo)
    with checkout(forge, issue.repo, base) as workspace:
        trial = git.git(
            workspace, "merge", "--no-ff", "-m", "trial merge", f"origin/{branch}", check=False
        )
        if trial.returncode != 0:
            return outcome.model_copy(
                update={"reason": f"{branch} conflicts with the current base"}
            )
        # A template without tests (docs) has no test command; the merge is still conflict-checked.
        on_base = run_test_command(workspace, ctx.test_command) if ctx.test_command else None
    if on_base is not None:
        outcome.test_seconds = on_base.duration_s
        rate = pricing.compute_usd_per_second
        ledger.record_compute(ctx.change_id, "test/merge-result", on_base.duration_s, rate)
    if on_base is not None and not on_base.passed:
        reason = f"tests fail on the merge with the current base:\n{on_base.output_tail}"
        return outcome.model_copy(update={"reason": reason})
    try:
        sha = forge.merge(pr, expected_base=base)
    except AlreadyMerged as exc:
        sha = exc.pr.merged_sha or ""
    except BaseMoved:
        raise
    except MergeRefused as exc:
        return outcome.model_copy(update={"reason": exc.reason})
    return _close(
        ctx, forge, ledger, outcome.model_copy(update={"merged": True, "merged_sha": sha}), attempts
    )


def _close(
    ctx: ChangeContext, forge: Forge, ledger: Ledger, outcome: MergeOutcome, attempts: int
) -> MergeOutcome:
    note = (
        f"#{outcome.pr_number} ({(outcome.merged_sha or '')[:10]}). "
        f"Cost: {cost_line(ledger, ctx.change_id)}; attempts: {attempts}."
    )
    if ctx.last_unit:
        forge.close_issue(ctx.issue, f"Resolved by {note}")
    else:
        forge.comment(
            ctx.issue.repo,
            ctx.issue.number,
            f"Unit {ctx.unit} of {ctx.unit_count} merged: {note}",
            key=f"change-{ctx.change_id}-unit-merged",
        )
    return outcome
