"""A change that does not fit its budget stops before the call, merges nothing, and says why."""

from blocks.budget import Budget
from flows.resolve import resolve_issue
from mergemeter.sample import default_route

REPO = "sample/textkit"


def test_change_over_budget_is_abandoned_with_nothing_merged(prefect_server, demo) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    base = forge.head_sha(REPO)
    report = resolve_issue(
        repo=REPO,
        number=1,
        forge=forge,
        route=default_route(),
        ledger=ledger,
        budget=Budget(per_change_usd=0.01),
    )
    assert report.status == "abandoned-budget"
    assert "change budget $0.0100" in report.reason
    change = ledger.change(report.change_id)  # type: ignore[arg-type]
    assert change.status == "abandoned-budget" and "change budget" in change.reason
    assert ledger.calls(report.change_id) == [], "the refused call was never sent"
    assert forge.head_sha(REPO) == base and forge.pull_requests(REPO) == []
    issue = forge.get_issue(REPO, 1)
    assert issue.state == "open" and "needs-human" in issue.labels
    assert any("abandoned-budget" in c for c in forge.comments(REPO, 1))


def test_a_route_modes_per_change_budget_is_a_hard_cap_in_the_pipeline(
    prefect_server, demo
) -> None:  # type: ignore[no-untyped-def]
    from tasks.routing_policy import CascadeMode

    forge, ledger = demo
    base = forge.head_sha(REPO)
    route = default_route()
    coder = route.candidates_for("coder")[0][0].model
    route = route.model_copy(update={"coder_mode": CascadeMode(models=[coder], budget_usd=0.01)})
    report = resolve_issue(repo=REPO, number=1, forge=forge, route=route, ledger=ledger)
    assert report.status == "abandoned-budget"
    assert "change budget $0.0100" in report.reason
    assert ledger.calls(report.change_id) == [], "the refused call was never sent"  # type: ignore[arg-type]
    assert forge.head_sha(REPO) == base and forge.pull_requests(REPO) == []
