"""Cache keys are honest: the same inputs reuse a step's result, changed inputs recompute it."""

from prefect import flow

from blocks.model_route import ModelChoice
from mergemeter.sample import default_route
from tasks.models import ChangeContext
from tasks.plan import plan

REPO = "sample/textkit"


def test_plan_is_reused_for_same_inputs_and_recomputed_when_issue_or_route_change(
    prefect_server,  # type: ignore[no-untyped-def]
    demo,
) -> None:
    forge, ledger = demo
    route = default_route()
    issue = forge.get_issue(REPO, 1)
    change = ledger.start_change(
        REPO, 1, issue.title, route.name, None, "default", forge.head_sha(REPO)
    )
    ctx = ChangeContext(
        change_id=change.id,  # type: ignore[arg-type]
        run_id="run-1",
        issue=issue,
        base_sha=change.base_sha,
        test_command="python -m pytest -q",
    )
    edited = ctx.model_copy(
        update={"issue": issue.model_copy(update={"body": issue.body + "\nAlso: '---'."})}
    )
    other_route = route.model_copy(
        update={"roles": {**route.roles, "planner": ModelChoice(model="replay/claude-haiku-4-5")}}
    )

    @flow
    def plans() -> None:
        plan(ctx, forge, route, ledger)
        plan(ctx, forge, route, ledger)  # same inputs: served from the cache
        plan(edited, forge, route, ledger)  # the issue changed
        plan(ctx, forge, other_route, ledger)  # the route changed

    plans()
    rows = ledger.calls(change.id)
    assert [r.model for r in rows] == [
        "replay/claude-sonnet-4-5",
        "replay/claude-sonnet-4-5",
        "replay/claude-haiku-4-5",
    ]
    assert [r.call_index for r in rows] == [0, 1, 2]
