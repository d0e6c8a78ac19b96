"""The template interpreter: how each step kind is called and what it adds to the change's state.

`resolve_issue` walks a template's steps; this module holds, per kind, the adapter that calls the
registered task with the inputs that kind needs and either records its result in `ChangeState` or
raises `StepFailed` with feedback for the next attempt. A kind without an adapter of its own is a
*check* (like a `lint` kind): a task ``(ctx, forge, edits, attempt) -> TestResult`` that must pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from blocks.budget import Budget
from blocks.ledger import Ledger
from blocks.local_forge import LocalForge
from blocks.model_route import ModelRoute
from blocks.pricing import Pricing
from flows.template import Step, Template
from tasks.edits import EditBlock
from tasks.models import ChangeContext, Edits, Plan, TestResult, Verdict
from tasks.registry import get_kind


class StepFailed(Exception):
    """A step did not pass. ``final``: no further attempt can help (e.g. no reproduction)."""

    def __init__(self, feedback: str, final: bool = False) -> None:
        super().__init__(feedback)
        self.feedback, self.final = feedback, final


class ChangeState(BaseModel):
    """What the steps of one change have produced so far."""

    plan: Plan | None = None
    reproduction: list[EditBlock] = Field(default_factory=list)
    prior: list[EditBlock] = Field(default_factory=list, description="Edits to build on.")
    edits: Edits | None = None
    result: TestResult | None = None
    verdict: Verdict | None = None
    feedback: str = ""
    needs_approval: list[str] = Field(default_factory=list, description="Protected paths touched.")


@dataclass
class Pipeline:
    """Everything a step may need, besides the state."""

    ctx: ChangeContext
    forge: LocalForge
    route: ModelRoute
    ledger: Ledger
    budget: Budget | None
    pricing: Pricing
    template: Template

    def task(self, step: Step, attempt: int) -> Any:
        name = step.id if attempt == 0 else f"{step.id}-attempt-{attempt}"
        return get_kind(step.kind).with_options(task_run_name=name, **step.task_options())

    def run(self, step: Step, state: ChangeState, attempt: int) -> None:
        ADAPTERS.get(step.kind, _check)(self, step, state, attempt)


def _plan(p: Pipeline, step: Step, state: ChangeState, attempt: int) -> None:
    state.plan = p.task(step, 0)(p.ctx, p.forge, p.route, p.ledger, p.budget)


def _reproduce(p: Pipeline, step: Step, state: ChangeState, attempt: int) -> None:
    found = p.task(step, 0)(p.ctx, p.forge, p.route, p.ledger, state.plan, p.budget)
    if not found.ok:
        raise StepFailed(f"no reproducing test: {found.error}", final=True)
    state.reproduction = state.prior = found.blocks


def _mode_choice(p: Pipeline, attempt: int) -> str | None:
    """The route mode's coder model for ``attempt`` (None: leave it to the routing policy).

    A choice already paid for is kept, so a retried run asks for the same inputs and its
    completed steps come from the cache.
    """
    from tasks.routing_policy import Attempt, AttemptOutcome
    from tasks.routing_policy import Issue as RoutedIssue

    mode = p.route.coder_mode
    if mode is None:
        return None
    rows = [c for c in p.ledger.calls(p.ctx.change_id) if c.step == "implement"]
    made = [c.model for c in rows if c.attempt == attempt]
    if made:
        return made[0]
    spent = {k: sum(c.cost_usd for c in rows if c.attempt == k) for k in {c.attempt for c in rows}}
    attempts = [
        Attempt(
            model=next(c.model for c in rows if c.attempt == k),
            outcome=AttemptOutcome(passed=False, cost_usd=spent[k]),
        )
        for k in sorted(spent)
        if k < attempt
    ]
    issue = RoutedIssue(repo=p.ctx.issue.repo, number=p.ctx.issue.number, title=p.ctx.issue.title)
    choice = mode.router(p.ledger, issue).next_attempt(attempts)
    if choice is None:
        raise StepFailed(
            f"route mode {mode.name} stops: no candidate is worth another attempt", final=True
        )
    return choice.model


def _implement(p: Pipeline, step: Step, state: ChangeState, attempt: int) -> None:
    prefer = _mode_choice(p, attempt)
    edits = p.task(step, attempt)(
        p.ctx, p.forge, p.route, p.ledger, state.plan, attempt, state.feedback, state.prior, p.budget, prefer
    )  # fmt: skip
    state.edits, state.result, state.verdict = edits, None, None
    if not edits.ok:
        raise StepFailed(f"Your edits did not apply: {edits.error}")
    state.prior = edits.blocks
    paths = sorted({block.path for block in edits.blocks})
    outside = p.template.disallowed(paths)
    if outside:
        raise StepFailed(
            f"The change touches paths this template does not allow ({', '.join(outside)}); "
            f"allowed: {', '.join(p.template.allowed_paths or [])}"
        )
    state.needs_approval = p.template.protected(paths)


def _test(p: Pipeline, step: Step, state: ChangeState, attempt: int) -> None:
    result = p.task(step, attempt)(p.ctx, p.forge, _edits(state), attempt)
    p.ledger.record_compute(
        p.ctx.change_id, f"{step.id}/{attempt}", result.duration_s, p.pricing.compute_usd_per_second
    )
    state.result = result
    if not result.passed:
        raise StepFailed(f"The tests failed ({result.failed_count} failed):\n{result.output_tail}")


def _review(p: Pipeline, step: Step, state: ChangeState, attempt: int) -> None:
    result = state.result or TestResult(
        passed=True, exit_code=0, output_tail="this template runs no tests"
    )
    verdict = p.task(step, attempt)(
        p.ctx, p.route, p.ledger, state.plan, _edits(state), result, attempt, p.budget
    )
    state.verdict = verdict
    if not verdict.approved:
        raise StepFailed(
            "The reviewer requested changes:\n" + "\n".join(f"- {r}" for r in verdict.reasons)
        )


def _check(p: Pipeline, step: Step, state: ChangeState, attempt: int) -> None:
    """A user-registered check kind: ``(ctx, forge, edits, attempt) -> TestResult``."""
    result = p.task(step, attempt)(p.ctx, p.forge, _edits(state), attempt)
    p.ledger.record_compute(
        p.ctx.change_id, f"{step.id}/{attempt}", result.duration_s, p.pricing.compute_usd_per_second
    )
    if not result.passed:
        raise StepFailed(f"The {step.id} check failed:\n{result.output_tail}")


def _edits(state: ChangeState) -> Edits:
    if state.edits is None or not state.edits.ok:
        raise StepFailed(
            "no applicable edits to check (the template needs an implement step first)", final=True
        )
    return state.edits


Adapter = Callable[[Pipeline, Step, ChangeState, int], None]
ADAPTERS: dict[str, Adapter] = {
    "plan": _plan,
    "reproduce": _reproduce,
    "implement": _implement,
    "test": _test,
    "review": _review,
}


def split(template: Template) -> tuple[list[Step], list[Step]]:
    """The steps that run once before the fix loop, and those every attempt runs (merge excluded).

    An attempt runs every step from the first repeated one on, in template order, so a step placed
    between repeated steps (a lint check, say) is never skipped.
    """
    repeated = set(template.fix_loop.repeat)
    body = template.steps[:-1]
    first = next(i for i, s in enumerate(body) if s.id in repeated)
    return body[:first], body[first:]
