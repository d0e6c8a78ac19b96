"""resolve_issue: one change, run as its pipeline template says.

The steps before the fix loop run once (plan, and for bugfixes reproduce); then up to
`fix_loop.max_attempts` attempts each run the loop's steps (implement ⇄ test ⇄ review, say), a
failure becoming the next attempt's feedback; then the merge policy: merge, wait for a person's
approval in the Prefect UI, or open a draft. A change that runs out of attempts is rejected, one
that would cross a budget is abandoned-budget; either way its issue is labelled for a person.
Costs are read back from the ledger, never counted here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from blocks.budget import Budget, BudgetExceeded
from blocks.ledger import Ledger
from blocks.local_forge import LocalForge
from blocks.model_route import ModelRoute
from blocks.pricing import Pricing
from blocks.rollups import rollup
from blocks.routing import NoCandidate, required_strength_from_labels
from flows.approval import wait_for_approval
from flows.artifacts import Progress, publish_change_artifacts, publish_fleet_artifact
from flows.outcome import announce
from flows.pipeline import ChangeState, Pipeline, StepFailed, split
from flows.template import Step, content_hash, find_template, load_template
from mergemeter.sample import default_route
from tasks.merge import branch_name, cost_line
from tasks.models import ChangeContext, MergeOutcome, Plan, TestResult, Unit


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
    units: list[ChangeReport] = Field(default_factory=list, description="Per unit, if decomposed.")


def _run_name() -> str:
    params = flow_run.parameters
    return f"{params['repo']}#{params['number']} {params.get('title', '')}".strip()


def _with_change_caps(
    budget: Budget | None, usd: float | None, tokens: int | None = None
) -> Budget | None:
    """The stricter of the given budget and per-change caps ``usd`` / ``tokens`` (None: none)."""
    if usd is None and tokens is None:
        return budget
    budget = budget or Budget()

    def tighter(a: float | None, b: float | None) -> float | None:
        return b if a is None else a if b is None else min(a, b)

    return budget.model_copy(
        update={
            "per_change_usd": tighter(budget.per_change_usd, usd),
            "per_change_tokens": tighter(budget.per_change_tokens, tokens),
        }
    )


@flow(flow_run_name=_run_name, log_prints=True)
def resolve_issue(
    repo: str,
    number: int,
    title: str = "",
    template: str = "default",
    forge: LocalForge | None = None,
    route: ModelRoute | None = None,
    ledger: Ledger | None = None,
    budget: Budget | None = None,
    pricing: Pricing | None = None,
    max_attempts: int | None = None,
    test_command: str | None = None,
    approval_timeout_s: int = 7 * 24 * 3600,
    approval_poll_s: int = 10,
) -> ChangeReport:
    """Resolve issue ``repo#number`` with ``template`` (a shipped name or a YAML path)."""
    forge, route, ledger = forge or LocalForge(), route or default_route(), ledger or Ledger()
    pricing = pricing or Pricing()
    template_path = find_template(template)
    pipeline_spec = load_template(template_path)
    budget = _with_change_caps(budget, pipeline_spec.budget_usd, pipeline_spec.budget_tokens)
    # A route mode's per-change budget is a hard cap too, checked before each call like the rest.
    budget = _with_change_caps(budget, route.coder_mode.budget_usd if route.coder_mode else None)
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
        template=pipeline_spec.name,
        base_sha=forge.head_sha(repo),
        template_hash=content_hash(template_path),
    )
    assert change.id is not None
    ctx = ChangeContext(
        change_id=change.id,
        run_id=run_id,
        issue=issue,
        base_sha=change.base_sha,
        test_command=pipeline_spec.test_command if test_command is None else test_command,
        sensitive=forge.is_sensitive(repo),
        required_strength=required_strength_from_labels(
            issue.labels, 1, route.policy.label_strengths
        ),
    )
    pipeline = Pipeline(ctx, forge, route, ledger, budget, pricing, pipeline_spec)
    once, each_attempt = split(pipeline_spec)
    attempts = max_attempts or pipeline_spec.fix_loop.max_attempts
    progress = Progress(f"{issue.ref}: {pipeline_spec.outline()}", steps=len(once) + attempts + 1)
    print(
        f"{issue.ref}: template {pipeline_spec.name} ({pipeline_spec.outline()}), route {route.name}"
    )
    gate = (approval_timeout_s, approval_poll_s)

    state = ChangeState()
    settled = _guarded(_run_once, pipeline, state, once, progress)
    units = _units(state.plan, pipeline_spec.max_units) if settled is None else []
    if not units:
        settled = settled or _guarded(
            _attempts_and_merge, pipeline, state, each_attempt, attempts, gate
        )
        assert settled is not None
        return _finish(pipeline, change.id, state, settled, progress)

    assert state.plan is not None
    reports: list[ChangeReport] = []
    for number, unit in enumerate(units, start=1):
        unit_change = change if number == 1 else ledger.start_change(
            repo, number, issue.title, route.name, run_id, template=pipeline_spec.name,
            base_sha=forge.head_sha(repo), template_hash=change.template_hash, unit=number,
        )  # fmt: skip
        assert unit_change.id is not None
        if number == 1:
            ledger.update_change(unit_change.id, unit=1)
        unit_ctx = ctx.model_copy(
            update={"change_id": unit_change.id, "unit": number, "unit_count": len(units),
                    "unit_summary": unit.summary, "base_sha": unit_change.base_sha}
        )  # fmt: skip
        unit_pipeline = replace(pipeline, ctx=unit_ctx)
        unit_state = ChangeState(
            plan=state.plan.for_unit(unit), prior=state.prior if number == 1 else []
        )
        print(f"{issue.ref} unit {number}/{len(units)}: {unit.summary}")
        result = _guarded(
            _attempts_and_merge, unit_pipeline, unit_state, each_attempt, attempts, gate
        )
        assert result is not None
        reports.append(_finish(unit_pipeline, unit_change.id, unit_state, result, progress))
        if result.status != "accepted":
            break  # a unit that fails stops the rest; its issue is already labelled
    return _combined(reports, len(units))


@dataclass
class Settled:
    """How a change ended, before it is written down."""

    status: str
    reason: str
    attempt: int = 0
    outcome: MergeOutcome = field(default_factory=lambda: MergeOutcome(merged=False))


def _guarded(run: Callable[..., Settled | None], *args: Any) -> Settled | None:
    """Run steps; a final step failure rejects the change, a budget cap abandons it."""
    try:
        return run(*args)
    except StepFailed as failed:
        return Settled("rejected", failed.feedback)
    except BudgetExceeded as exc:
        return Settled("abandoned-budget", f"stopped before a call that could cross the {exc}")
    except NoCandidate as exc:
        return Settled("abandoned-no-model", f"no model may take this call: {exc}")


def _run_once(
    pipeline: Pipeline, state: ChangeState, steps: list[Step], progress: Progress
) -> None:
    for step in steps:
        pipeline.run(step, state, 0)
        progress.advance()


def _attempts_and_merge(
    pipeline: Pipeline, state: ChangeState, steps: list[Step], attempts: int, gate: tuple[int, int]
) -> Settled:
    ref = pipeline.ctx.replay_prefix
    attempt = 0
    for attempt in range(1, attempts + 1):
        try:
            for step in steps:
                pipeline.run(step, state, attempt)
        except StepFailed as failed:
            if failed.final:
                raise
            state.feedback = failed.feedback
            print(f"{ref} attempt {attempt} not accepted: {failed.feedback.splitlines()[0]}")
            continue
        status, reason, outcome = _merge(pipeline, state, attempt, *gate)
        return Settled(status, reason, attempt, outcome)
    return Settled("rejected", f"not accepted after {attempt} attempts: {state.feedback}", attempt)


def _units(plan: Plan | None, max_units: int) -> list[Unit]:
    """The plan's units when the template allows decomposing; extra units fold into the last."""
    if plan is None or max_units < 2 or len(plan.units) < 2:
        return []
    units = list(plan.units[:max_units])
    if len(plan.units) > max_units:
        rest = plan.units[max_units - 1 :]
        units[-1] = Unit(
            summary="; ".join(u.summary for u in rest),
            files=sorted({f for u in rest for f in u.files}),
        )
    return units


def _finish(
    pipeline: Pipeline, change_id: int, state: ChangeState, settled: Settled, progress: Progress
) -> ChangeReport:
    """Write the outcome to the ledger and the forge, publish it, and announce it."""
    ctx, ledger = pipeline.ctx, pipeline.ledger
    fields: dict[str, object] = {}
    if settled.status == "accepted" and state.edits is not None:
        fields = {
            "merged_sha": settled.outcome.merged_sha,
            "lines_added": state.edits.lines_added,
            "lines_removed": state.edits.lines_removed,
        }
    ledger.finish_change(
        change_id, settled.status, settled.reason[:4000], attempts=settled.attempt,
        pr=settled.outcome.pr_number, **fields,
    )  # fmt: skip
    if settled.status not in ("accepted", "draft"):
        label = pipeline.template.fix_loop.on_failure
        _hand_to_person(
            pipeline.forge, ledger, ctx, settled.attempt, settled.status, settled.reason, label
        )
    progress.finish()
    publish_change_artifacts(ledger, change_id, settled.outcome.pr_url, pipeline.pricing)
    publish_fleet_artifact(ledger, pipeline.pricing)
    _, spent = rollup(ledger, pipeline.pricing, change_ids=[change_id])
    report = ChangeReport(
        ref=ctx.issue.ref,
        title=ctx.issue.title,
        change_id=change_id,
        status=settled.status,
        attempts=settled.attempt,
        tokens=spent.tokens,
        cost_usd=spent.total_usd,
        pr_number=settled.outcome.pr_number,
        reason=settled.reason,
    )
    budget = pipeline.budget
    announce(
        report.model_dump(),
        pipeline.route.name,
        ctx.run_id,
        budget.alert_change_usd if budget else None,
    )
    return report


def _combined(reports: list[ChangeReport], planned: int) -> ChangeReport:
    """One report for a decomposed issue: accepted only when every planned unit was merged."""
    failed = next((r for r in reports if r.status != "accepted"), None)
    last = reports[-1]
    return last.model_copy(
        update={
            "status": "accepted"
            if failed is None and len(reports) == planned
            else (failed or last).status,
            "reason": failed.reason if failed else "",
            "attempts": sum(r.attempts for r in reports),
            "tokens": sum(r.tokens for r in reports),
            "cost_usd": sum(r.cost_usd for r in reports),
            "units": reports,
        }
    )


def _merge(
    pipeline: Pipeline,
    state: ChangeState,
    attempt: int,
    approval_timeout_s: int,
    approval_poll_s: int,
) -> tuple[str, str, MergeOutcome]:
    """Apply the template's merge policy; returns (status, reason, outcome)."""
    spec, ctx = pipeline.template, pipeline.ctx
    assert state.edits is not None and state.verdict is not None
    result = state.result or TestResult(
        passed=True, exit_code=0, output_tail="this template runs no tests"
    )
    merge = pipeline.task(spec.merge_step, 0)
    args = (
        ctx,
        pipeline.forge,
        pipeline.ledger,
        pipeline.pricing,
        state.edits,
        result,
        state.verdict,
        attempt,
    )
    policy = spec.merge_policy
    if policy == "auto" and state.needs_approval:
        policy = "human-approval"  # protected paths are never merged without a person
    if policy == "auto":
        outcome = merge(*args)
        return (
            ("accepted", "", outcome) if outcome.merged else ("rejected", outcome.reason, outcome)
        )
    opened = merge(*args, open_only=True)
    if policy == "draft":
        return (
            "draft",
            f"draft pull request {opened.pr_url} opened; the template never merges",
            opened,
        )
    approval = wait_for_approval(
        pipeline.ledger,
        pipeline.pricing,
        ctx.change_id,
        opened.pr_url,
        approval_timeout_s,
        approval_poll_s,
    )
    if not approval.approve:
        assert opened.pr_number is not None
        pipeline.forge.comment(
            ctx.issue.repo,
            opened.pr_number,
            f"Rejected by the reviewer: {approval.comment}",
            key=f"change-{ctx.change_id}-rejection",
        )
        return "rejected", f"rejected by the reviewer: {approval.comment}", opened
    outcome = merge(*args)
    return ("accepted", "", outcome) if outcome.merged else ("rejected", outcome.reason, outcome)


def _hand_to_person(
    forge: LocalForge,
    ledger: Ledger,
    ctx: ChangeContext,
    attempts: int,
    status: str,
    reason: str,
    label: str,
) -> None:
    forge.add_label(ctx.issue, label)
    forge.comment(
        ctx.issue.repo,
        ctx.issue.number,
        f"mergemeter could not resolve this ({status}, {branch_name(ctx)}): {reason.splitlines()[0]}\n"
        f"Spent: {cost_line(ledger, ctx.change_id)}; attempts: {attempts}. Labelled `{label}`.",
        key=f"change-{ctx.change_id}-handoff",
    )
