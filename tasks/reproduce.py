"""reproduce (bugfix templates): write a test that shows the bug, and prove it fails on the base.

The coder answers with SEARCH/REPLACE blocks that add the test. The result carries those blocks,
so the following implement step builds on them, and the suite that must pass at the end includes
the reproducing test: accepted means the test failed on the base and passes with the fix.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from blocks.budget import Budget
from blocks.forge import Forge
from blocks.ledger import Ledger
from blocks.model_route import ModelRoute
from tasks import faults
from tasks.edits import EditBlock, EditError, apply_answer
from tasks.llm import ask
from tasks.models import ChangeContext, Plan
from tasks.policy import model_step
from tasks.workspace import checkout, read_files, run_test_command

SYSTEM = (
    "Write one or more tests that reproduce the reported bug: they must fail on the current code. "
    "Do not fix the bug. Answer with SEARCH/REPLACE blocks that add the tests."
)


class Reproduction(BaseModel):
    """The reproducing test and what it did on the base."""

    ok: bool = Field(description="The edits apply and the tests fail on the base.")
    blocks: list[EditBlock] = Field(default_factory=list, description="Edits that add the test.")
    failed_on_base: bool = False
    output_tail: str = ""
    error: str = ""


@model_step("reproduce")
def reproduce(
    ctx: ChangeContext,
    forge: Forge,
    route: ModelRoute,
    ledger: Ledger,
    plan: Plan,
    budget: Budget | None = None,
) -> Reproduction:
    faults.inject("reproduce")
    with checkout(forge, ctx.issue.repo, ctx.base_sha) as workspace:
        prompt = (
            f"Issue {ctx.issue.ref}: {ctx.issue.title}\n\n{ctx.issue.body}\n\nPlan: {plan.summary}\n\n"
            f"Files:\n{read_files(workspace, plan.files)}"
        )
        answer = ask(
            ctx,
            route,
            ledger,
            budget,
            step="reproduce",
            attempt=1,
            role="coder",
            system=SYSTEM,
            prompt=prompt,
        )
        try:
            blocks = apply_answer(workspace, answer)
        except EditError as exc:
            return Reproduction(ok=False, error=str(exc))
        on_base = run_test_command(workspace, ctx.test_command)
    if on_base.passed:
        return Reproduction(
            ok=False,
            blocks=blocks,
            output_tail=on_base.output_tail,
            error="the reproducing test already passes on the base, so it does not show the bug",
        )
    return Reproduction(
        ok=True, blocks=blocks, failed_on_base=True, output_tail=on_base.output_tail
    )
