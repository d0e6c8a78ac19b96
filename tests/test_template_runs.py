"""Each shipped template end to end on the demo forge, and the merge policies."""

from pathlib import Path

import pytest

from blocks import git
from blocks.model_route import replay_route
from flows.dispatch import template_for
from flows.resolve import resolve_issue
from flows.template import content_hash, find_template
from mergemeter.demo import file_issues
from mergemeter.sample import TEMPLATE_CASSETTE, TEMPLATE_ISSUES, default_route
from tasks.workspace import checkout

REPO = "sample/textkit"


@pytest.fixture
def forge_with_template_issues(prefect_server, demo):  # type: ignore[no-untyped-def]
    forge, ledger = demo
    file_issues(forge, TEMPLATE_ISSUES)
    return forge, ledger, replay_route(str(TEMPLATE_CASSETTE))


def _main_file(forge, path: str) -> str:  # type: ignore[no-untyped-def]
    with checkout(forge, REPO, "main") as workspace:
        return (workspace / path).read_text()


def test_bugfix_reproduces_the_bug_first_then_fixes_it(forge_with_template_issues) -> None:  # type: ignore[no-untyped-def]
    forge, ledger, route = forge_with_template_issues
    report = resolve_issue(
        repo=REPO, number=5, template="bugfix", forge=forge, route=route, ledger=ledger
    )
    assert report.status == "accepted", report.reason
    change = ledger.change(report.change_id)  # type: ignore[arg-type]
    assert change.template == "bugfix"
    assert change.template_hash == content_hash(find_template("bugfix"))
    assert [c.step for c in ledger.calls(change.id)] == ["plan", "reproduce", "implement", "review"]
    assert "def test_zero_has_no_numeral" in _main_file(forge, "tests/test_roman.py")
    assert "number < 1" in _main_file(forge, "textkit/roman.py")


def test_bugfix_whose_reproducing_test_passes_on_the_base_is_rejected(
    forge_with_template_issues,
) -> None:  # type: ignore[no-untyped-def]
    forge, ledger, route = forge_with_template_issues
    base = forge.head_sha(REPO)
    report = resolve_issue(
        repo=REPO, number=6, template="bugfix", forge=forge, route=route, ledger=ledger
    )
    assert report.status == "rejected"
    assert "already passes on the base" in report.reason
    assert forge.head_sha(REPO) == base and forge.pull_requests(REPO) == []
    assert "needs-human" in forge.get_issue(REPO, 6).labels


def test_docs_change_is_reviewed_and_merged_without_a_test_run(forge_with_template_issues) -> None:  # type: ignore[no-untyped-def]
    forge, ledger, route = forge_with_template_issues
    report = resolve_issue(
        repo=REPO, number=7, template="docs", forge=forge, route=route, ledger=ledger
    )
    assert report.status == "accepted", report.reason
    assert "## Durations" in _main_file(forge, "README.md")
    assert ledger.cost_items(report.change_id) == [], "the docs template runs no tests"


def test_docs_change_touching_code_is_rejected(forge_with_template_issues) -> None:  # type: ignore[no-untyped-def]
    forge, ledger, route = forge_with_template_issues
    base = forge.head_sha(REPO)
    report = resolve_issue(
        repo=REPO, number=8, template="docs", forge=forge, route=route, ledger=ledger
    )
    assert report.status == "rejected" and report.attempts == 2
    assert "does not allow (textkit/slug.py)" in report.reason
    assert forge.head_sha(REPO) == base and forge.pull_requests(REPO) == []


def _variant(tmp_path: Path, name: str, **changes: str) -> Path:
    text = find_template("default").read_text().replace("name: default", f"name: {name}")
    for old, new in changes.items():
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_draft_policy_opens_a_pull_request_and_never_merges(
    prefect_server, demo, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    template = _variant(tmp_path, "draft-only", **{"merge_policy: auto": "merge_policy: draft"})
    base = forge.head_sha(REPO)
    report = resolve_issue(
        repo=REPO,
        number=1,
        template=str(template),
        forge=forge,
        route=default_route(),
        ledger=ledger,
    )
    assert report.status == "draft"
    [pr] = forge.pull_requests(REPO)
    assert pr.state == "open" and forge.head_sha(REPO) == base
    assert forge.get_issue(REPO, 1).state == "open"
    assert git.out(forge.bare_path(REPO), "rev-list", "--merges", "main") == ""


def test_an_issue_label_chooses_its_template() -> None:
    assert template_for(["agent-ready", "template:docs"], "default") == "docs"
    assert template_for(["agent-ready"], "default") == "default"


def test_a_decomposed_issue_becomes_several_merged_pull_requests_and_one_closed_issue(
    forge_with_template_issues,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    forge, ledger, route = forge_with_template_issues
    template = _variant(tmp_path, "in-parts", **{"max_units: 1": "max_units: 3"})
    report = resolve_issue(
        repo=REPO, number=9, template=str(template), forge=forge, route=route, ledger=ledger
    )
    assert report.status == "accepted", report.reason
    assert [u.status for u in report.units] == ["accepted", "accepted"]
    changes = ledger.changes([u.change_id for u in report.units])  # type: ignore[misc]
    assert [c.unit for c in changes] == [1, 2] and len({c.id for c in changes}) == 2
    prs = forge.pull_requests(REPO)
    assert [pr.state for pr in prs] == ["merged", "merged"]
    assert forge.get_issue(REPO, 9).state == "closed"
    assert any(c.startswith("Unit 1 of 2 merged") for c in forge.comments(REPO, 9))
    assert "number < 1" in _main_file(forge, "textkit/roman.py")
    assert "if not words:" in _main_file(forge, "textkit/slug.py")
    assert report.cost_usd == pytest.approx(sum(u.cost_usd for u in report.units))


def test_a_route_mode_chooses_each_attempts_coder(prefect_server, demo) -> None:  # type: ignore[no-untyped-def]
    from blocks.model_route import ModelChoice
    from tasks.routing_policy import CascadeMode

    forge, ledger = demo
    route = default_route()
    strong, cheap = "replay/claude-sonnet-4-5", "replay/deepseek/deepseek-v4-flash"
    route = route.model_copy(
        update={
            "name": "cascade-team",
            "candidates": {
                "coder": [
                    *route.candidates_for("coder")[0],
                    route.candidates_for("coder")[0][0].model_copy(
                        update={"model": strong, "name": "strong"}
                    ),
                ]
            },
            # the reviewer must not be a model that wrote part of the diff
            "roles": {
                **route.roles,
                "coder": ModelChoice(model=cheap),
                "reviewer": ModelChoice(model="replay/claude-haiku-4-5"),
            },
            "coder_mode": CascadeMode(models=[strong, cheap]),
        }
    )
    report = resolve_issue(repo=REPO, number=3, forge=forge, route=route, ledger=ledger)
    assert report.status == "accepted"
    coders = [c.model for c in ledger.calls(report.change_id) if c.step == "implement"]
    assert coders == [strong, cheap], "the cascade, not the cheapest-first policy, chose the coders"
