"""plan: issue + a map of the repository -> Plan."""

from __future__ import annotations

import json

from blocks.budget import Budget
from blocks.forge import Forge
from blocks.ledger import Ledger
from blocks.model_route import ModelRoute
from tasks import faults
from tasks.llm import ask
from tasks.models import ChangeContext, Plan
from tasks.policy import model_step
from tasks.workspace import checkout, repository_map

SYSTEM = (
    "You plan one small, reviewable change that resolves a GitHub issue. Answer with JSON only: "
    '{"summary": str, "files": [paths to read and change], "acceptance": [checks], '
    '"units": [{"summary": str, "files": [paths]}]}. Give units only when the issue is best '
    "done as several small pull requests, in the order they must merge."
)


class PlanError(ValueError):
    """The planner's answer is not a plan (the call is billed all the same)."""


@model_step("plan")
def plan(
    ctx: ChangeContext,
    forge: Forge,
    route: ModelRoute,
    ledger: Ledger,
    budget: Budget | None = None,
) -> Plan:
    faults.inject("plan")
    with checkout(forge, ctx.issue.repo, ctx.base_sha) as workspace:
        files = repository_map(workspace)
    prompt = f"Issue {ctx.issue.ref}: {ctx.issue.title}\n\n{ctx.issue.body}\n\nRepository files:\n{files}"
    answer = ask(
        ctx,
        route,
        ledger,
        budget,
        step="plan",
        attempt=1,
        role="planner",
        system=SYSTEM,
        prompt=prompt,
    )
    try:
        return Plan.model_validate(json.loads(answer))
    except ValueError as exc:
        raise PlanError(f"planner answer for {ctx.issue.ref} is not a plan: {exc}") from exc
