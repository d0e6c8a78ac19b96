"""The whole demo through Prefect: 3 accepted, 1 handed to a person, figures that add up."""

import asyncio
import re

import pytest

from blocks import git
from flows.artifacts import FLEET_KEY
from flows.dispatch import dispatch
from mergemeter.demo import fresh_demo, render_table
from mergemeter.sample import default_route, demo_routes
from tasks.workspace import checkout, run_test_command

REPO = "sample/textkit"


@pytest.fixture(scope="module")
def demo_run(prefect_server, tmp_path_factory):  # type: ignore[no-untyped-def]
    forge, ledger = fresh_demo(tmp_path_factory.mktemp("demo") / "demo")
    reports = dispatch(forge=forge, routes=demo_routes(), ledger=ledger)
    return forge, ledger, reports


def test_demo_accepts_three_and_hands_one_to_a_person(demo_run) -> None:  # type: ignore[no-untyped-def]
    forge, ledger, reports = demo_run
    outcomes = {r.ref: (r.status, r.attempts) for r in reports}
    assert outcomes == {
        f"{REPO}#1": ("accepted", 1),
        f"{REPO}#2": ("accepted", 1),
        f"{REPO}#3": ("accepted", 2),
        f"{REPO}#4": ("rejected", 3),
    }
    rejected = forge.get_issue(REPO, 4)
    assert rejected.state == "open" and "needs-human" in rejected.labels
    assert any("could not resolve" in c for c in forge.comments(REPO, 4))
    assert [pr.state for pr in forge.pull_requests(REPO)] == ["merged"] * 3


def test_printed_totals_are_the_ledger_totals(demo_run) -> None:  # type: ignore[no-untyped-def]
    _, ledger, reports = demo_run
    table = render_table(reports, ledger)
    model_cost = sum(call.cost_usd for call in ledger.calls())
    compute_cost = sum(item.amount_usd for item in ledger.cost_items())
    assert model_cost > 0 and 0 < compute_cost < model_cost
    ledger_total = model_cost + compute_cost
    printed_total = float(re.search(r"total cost:\s+\$(\d+\.\d+)", table).group(1))  # type: ignore[union-attr]
    printed_per_change = float(
        re.search(r"cost per accepted change:\s+\$(\d+\.\d+)", table).group(1)
    )  # type: ignore[union-attr]
    assert printed_total == round(ledger_total, 4)
    assert printed_per_change == round(ledger_total / 3, 4)
    assert sum(r.cost_usd for r in reports) == pytest.approx(ledger_total)
    assert "accepted changes:           3 of 4" in table
    failed_work = [c for c in ledger.calls() if c.change_id == reports[3].change_id]
    assert failed_work and all(c.cost_usd > 0 for c in failed_work), "rejected work is paid for"


def test_main_passes_its_own_tests_after_every_merge(demo_run) -> None:  # type: ignore[no-untyped-def]
    forge, _, _ = demo_run
    merges = git.out(
        forge.bare_path(REPO), "rev-list", "--first-parent", "--merges", "main"
    ).split()
    assert len(merges) == 3
    for sha in merges:
        with checkout(forge, REPO, sha) as workspace:
            result = run_test_command(workspace, "python -m pytest -q")
            assert result.passed, f"main is red at {sha}:\n{result.output_tail}"
    with checkout(forge, REPO, "main") as workspace:
        assert "if not words:" in (workspace / "textkit" / "slug.py").read_text()
        assert "_WHOLE" in (workspace / "textkit" / "duration.py").read_text()
        assert "_hyphenate" not in (workspace / "textkit" / "wrap.py").read_text()


def test_every_closed_issue_carries_its_cost(demo_run) -> None:  # type: ignore[no-untyped-def]
    forge, ledger, reports = demo_run
    for report in reports[:3]:
        issue = forge.get_issue(REPO, int(report.ref.rsplit("#", 1)[1]))
        assert issue.state == "closed"
        [closing] = [c for c in forge.comments(REPO, issue.number) if c.startswith("Resolved by")]
        change_id = report.change_id
        model = sum(c.cost_usd for c in ledger.calls(change_id))
        compute = sum(i.amount_usd for i in ledger.cost_items(change_id))
        assert f"${model + compute:.4f} (replay-priced)" in closing
        assert f"model ${model:.4f}, test compute ${compute:.4f}" in closing
        assert f"attempts: {report.attempts}" in closing


def test_runs_and_the_fleet_artifact_are_in_prefect(demo_run) -> None:  # type: ignore[no-untyped-def]
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _, ledger, _ = demo_run

    async def read():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            runs = await client.read_flow_runs()
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[FLEET_KEY]))
            )
            return runs, artifacts

    runs, artifacts = asyncio.run(read())
    names = {r.name for r in runs}
    assert f"{REPO}#1 slugify crashes on empty input" in names
    latest = max(artifacts, key=lambda a: a.created)
    spent = sum(c.cost_usd for c in ledger.calls()) + sum(i.amount_usd for i in ledger.cost_items())
    per_change = spent / 3
    assert f"Cost per accepted change: ${per_change:.4f}" in str(latest.data)


def test_report_command_agrees_with_the_ledger_to_the_cent(demo_run, capsys) -> None:  # type: ignore[no-untyped-def]
    import csv
    import io
    import json

    from mergemeter.cli import main

    _, ledger, _ = demo_run
    spent = sum(c.cost_usd for c in ledger.calls()) + sum(i.amount_usd for i in ledger.cost_items())
    main(["report", "--ledger", ledger.url, "--by", "route", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert round(data["all"]["total_usd"], 2) == round(spent, 2)
    assert data["all"]["cost_per_accepted_change"] == pytest.approx(spent / 3, abs=1e-6)
    assert data["all"]["accepted"] == 3 and data["all"]["changes"] == 4
    assert data["all"]["attempts_per_accepted_change"] == pytest.approx(4 / 3)
    by_route = {g["group"]: g for g in data["groups"]}
    cheap, premium = (by_route[r.name] for r in demo_routes())
    assert (cheap["changes"], cheap["accepted"], premium["changes"], premium["accepted"]) == (
        2,
        2,
        1 + 1,
        1,
    )
    assert premium["wasted_usd"] > 0 and cheap["wasted_usd"] == 0
    calls = {c.change_id: c for c in ledger.calls()}
    routes_of = {ch.id: ch.route for ch in ledger.changes()}
    premium_spent = sum(
        c.cost_usd for c in ledger.calls() if routes_of[c.change_id] == premium["group"]
    )
    premium_spent += sum(
        i.amount_usd for i in ledger.cost_items() if routes_of[i.change_id] == premium["group"]
    )
    assert premium["total_usd"] == pytest.approx(premium_spent, abs=1e-6) and calls

    main(["report", "--ledger", ledger.url, "--by", "model", "--csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["group"] for r in rows} == {
        "replay/claude-opus-4-5",
        "replay/claude-sonnet-4-5",
        "replay/deepseek/deepseek-v4-flash",
        "all",
    }
    models = [r for r in rows if r["group"] != "all"]
    assert sum(float(r["tokens_usd"]) for r in models) == pytest.approx(
        sum(c.cost_usd for c in ledger.calls()), abs=1e-5
    )

    main(["report", "--ledger", ledger.url])
    text = capsys.readouterr().out
    assert f"{spent / 3:.4f}" in text and "replay-priced" in text


def test_runs_are_tagged_with_route_and_outcome(demo_run) -> None:  # type: ignore[no-untyped-def]
    from prefect import get_client

    async def read():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return await client.read_flow_runs()

    runs = {r.name: r for r in asyncio.run(read())}
    accepted = runs[f"{REPO}#1 slugify crashes on empty input"]
    rejected = runs[f"{REPO}#4 wrap() should hyphenate words longer than the width"]
    assert "outcome:accepted" in accepted.tags and f"route:{default_route().name}" in accepted.tags
    assert "outcome:rejected" in rejected.tags


def test_issues_are_split_between_routes_by_weight_or_label() -> None:
    from flows.dispatch import route_for

    teams = demo_routes()
    taken = [0, 0]
    picks = []
    for labels in ([], [], [], [f"route:{teams[0].name}"], []):
        chosen = route_for(labels, teams, [1.0, 1.0], taken)
        taken[chosen] += 1
        picks.append(chosen)
    assert picks == [0, 1, 0, 0, 1]
    taken = [0, 0]
    for _ in range(8):
        taken[route_for([], teams, [3.0, 1.0], taken)] += 1
    assert taken == [6, 2]
