"""The human approval gate: the run pauses before merging; a person approves or rejects through
Prefect's API (what the UI's form sends), and the review time is billed."""

import asyncio
import threading
from pathlib import Path

import pytest

from flows.resolve import ChangeReport, resolve_issue
from flows.template import find_template
from mergemeter.sample import default_route

REPO = "sample/textkit"


def _approval_template(tmp_path: Path) -> Path:
    text = find_template("default").read_text()
    text = text.replace("name: default", "name: reviewed").replace(
        "merge_policy: auto", "merge_policy: human-approval"
    )
    path = tmp_path / "reviewed.yaml"
    path.write_text(text)
    return path


def _run_until_paused(
    forge, ledger, template: Path
) -> tuple[threading.Thread, list[ChangeReport], str]:  # type: ignore[no-untyped-def]
    from prefect import get_client

    reports: list[ChangeReport] = []

    def run() -> None:
        reports.append(
            resolve_issue(
                repo=REPO,
                number=1,
                template=str(template),
                forge=forge,
                route=default_route(),
                ledger=ledger,
                approval_poll_s=1,
            )  # fmt: skip
        )

    worker = threading.Thread(target=run, daemon=True)
    worker.start()

    async def paused_run_id() -> str:
        async with get_client() as client:
            for _ in range(240):
                changes = ledger.changes()
                if changes and changes[0].flow_run_id:
                    run = await client.read_flow_run(changes[0].flow_run_id)  # type: ignore[arg-type]
                    if run.state is not None and run.state.is_paused():
                        return str(run.id)
                await asyncio.sleep(0.5)
        raise TimeoutError("the run never paused for approval")

    return worker, reports, asyncio.run(paused_run_id())


def _answer(flow_run_id: str, **run_input: object) -> None:
    from uuid import UUID

    from prefect.flow_runs import resume_flow_run

    resume_flow_run(UUID(flow_run_id), run_input=run_input)


def test_approved_change_is_merged_and_review_minutes_are_billed(
    prefect_server, demo, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    worker, reports, run_id = _run_until_paused(forge, ledger, _approval_template(tmp_path))
    [pr] = forge.pull_requests(REPO)
    assert pr.state == "open", "the pull request is open while the person decides"
    _answer(run_id, approve=True, comment="looks right", review_minutes=12)
    worker.join(timeout=120)
    [report] = reports
    assert report.status == "accepted"
    assert forge.pull_requests(REPO)[0].state == "merged"
    [review] = [i for i in ledger.cost_items(report.change_id) if i.kind == "review"]
    assert review.quantity == 12 and review.amount_usd == pytest.approx(12 * 90 / 60)
    assert "approved" in review.note and "looks right" in review.note
    assert report.cost_usd > review.amount_usd, "review time is part of the change's full cost"


def test_rejected_change_is_not_merged_and_the_comment_lands_on_the_pull_request(
    prefect_server, demo, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    base = forge.head_sha(REPO)
    worker, reports, run_id = _run_until_paused(forge, ledger, _approval_template(tmp_path))
    _answer(run_id, approve=False, comment="the empty slug should be 'untitled'")
    worker.join(timeout=120)
    [report] = reports
    assert report.status == "rejected" and "untitled" in report.reason
    [pr] = forge.pull_requests(REPO)
    assert pr.state == "open" and forge.head_sha(REPO) == base
    assert any("untitled" in c for c in forge.comments(REPO, pr.number))
    [review] = [i for i in ledger.cost_items(report.change_id) if i.kind == "review"]
    assert "rejected" in review.note


def test_an_auto_merge_that_touches_a_protected_path_waits_for_a_person(
    prefect_server, demo, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    text = find_template("default").read_text().replace("name: default", "name: guarded")
    text = text.replace(
        'protected_paths:\n  - ".github/**"',
        'protected_paths:\n  - "textkit/slug.py"\n  - ".github/**"',
    )
    template = tmp_path / "guarded.yaml"
    template.write_text(text)
    worker, reports, run_id = _run_until_paused(forge, ledger, template)
    assert forge.pull_requests(REPO)[0].state == "open"
    _answer(run_id, approve=True, comment="slug.py change is fine")
    worker.join(timeout=120)
    assert reports[0].status == "accepted"
