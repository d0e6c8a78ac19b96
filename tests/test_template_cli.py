"""`mergemeter template ...`: every problem of a broken template, with its line; a lint kind."""

from pathlib import Path

from prefect import task

from blocks.forge import Forge
from flows.template import find_template
from mergemeter.cli import main
from tasks.models import ChangeContext, Edits, TestResult
from tasks.registry import register_kind
from tasks.workspace import checkout, run_test_command

BROKEN = """\
name: broken
description: several mistakes
version: 1
steps:
  - id: plan
    kind: plam
    role: planner
  - id: implement
    kind: implement
    role: coder
  - id: merge
    kind: merge
fix_loop:
  repeat: [implement, tset]
  max_attempts: 3
protected_paths: ["[abc"]
merge_policy: auto
budget_usd: -1
"""


def test_validate_prints_each_problem_with_its_location(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    assert main(["template", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:6: steps[0].kind: unknown task kind 'plam' (did you mean 'plan'?)" in out
    assert f"{path}:14: fix_loop.repeat[1]: 'tset' is not a step id" in out
    assert f"{path}:16: protected_paths[0]: invalid glob '[abc'" in out
    assert f"{path}:18: budget_usd: should be greater than 0" in out


def test_new_writes_a_template_that_validates(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["template", "new", "triage", "--dir", str(tmp_path)]) == 0
    assert main(["template", "validate", str(tmp_path / "triage.yaml")]) == 0
    assert main(["template", "list"]) == 0
    assert "bugfix" in capsys.readouterr().out


@task
def lint(ctx: ChangeContext, forge: Forge, edits: Edits, attempt: int) -> TestResult:
    """The README's example kind: ruff on the change's tree."""
    with checkout(forge, ctx.issue.repo, ctx.base_sha, edits.blocks) as workspace:
        return run_test_command(workspace, "python -m ruff check --select F .")


def test_a_registered_lint_kind_runs_in_a_template(
    prefect_server, demo, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from flows.resolve import resolve_issue
    from mergemeter.sample import default_route
    from tasks import registry

    monkeypatch.setattr(registry, "_kinds", {})  # the kind disappears after this test
    register_kind("lint", lint)
    text = find_template("default").read_text().replace("name: default", "name: linted")
    text = text.replace("  - id: review\n", "  - id: lint\n    kind: lint\n  - id: review\n", 1)
    path = tmp_path / "linted.yaml"
    path.write_text(text)
    assert main(["template", "validate", str(path)]) == 0
    forge, ledger = demo
    report = resolve_issue(
        repo="sample/textkit",
        number=1,
        template=str(path),
        forge=forge,
        route=default_route(),
        ledger=ledger,
    )
    assert report.status == "accepted"
    assert [i.note for i in ledger.cost_items(report.change_id)] == [
        "test/1",
        "lint/1",
        "test/merge-result",
    ]
