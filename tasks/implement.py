"""implement: plan + file contents + last attempt's feedback -> SEARCH/REPLACE edits.

The edits build on the previous attempt's edits (carried in, not read from disk), and the result
carries all of them from the base, so any later step can rebuild the tree on a fresh checkout.
"""

from __future__ import annotations

from blocks.budget import Budget
from blocks.forge import Forge
from blocks.ledger import Ledger
from blocks.model_route import ModelRoute
from tasks import faults
from tasks.edits import EditBlock, EditError, apply_answer
from tasks.llm import ask
from tasks.models import ChangeContext, Edits, Plan
from tasks.policy import model_step
from tasks.workspace import checkout, diff_stats, read_files

SYSTEM = (
    "You edit a repository to carry out a plan. Answer with SEARCH/REPLACE blocks: the file path "
    "on its own line, then '<<<<<<< SEARCH', the exact current lines, '=======', the new lines, "
    "'>>>>>>> REPLACE'. Keep the change small and add or update tests."
)


@model_step("implement-attempt-{attempt}")
def implement(
    ctx: ChangeContext,
    forge: Forge,
    route: ModelRoute,
    ledger: Ledger,
    plan: Plan,
    attempt: int,
    feedback: str,
    prior_edits: list[EditBlock],
    budget: Budget | None = None,
    prefer_model: str | None = None,
) -> Edits:
    faults.inject("implement")
    with checkout(forge, ctx.issue.repo, ctx.base_sha, prior_edits) as workspace:
        prompt = (
            f"Issue {ctx.issue.ref}: {ctx.issue.title}\n\n{ctx.issue.body}\n\nPlan: {plan.summary}\n"
            f"Acceptance: {'; '.join(plan.acceptance)}\n\nFiles:\n{read_files(workspace, plan.files)}"
        )
        if feedback:
            prompt += f"\n\nThe previous attempt was not accepted:\n{feedback}"
        answer = ask(
            ctx,
            route,
            ledger,
            budget,
            step="implement",
            attempt=attempt,
            role="coder",
            system=SYSTEM,
            prompt=prompt,
            prefer_model=prefer_model,
        )
        try:
            new_blocks = apply_answer(workspace, answer)
        except EditError as exc:
            return Edits(ok=False, blocks=prior_edits, error=str(exc))
        diff, added, removed = diff_stats(workspace)
    return Edits(
        ok=True,
        blocks=[*prior_edits, *new_blocks],
        diff=diff,
        lines_added=added,
        lines_removed=removed,
    )
