"""merge: only green, approved changes that stay green on the current base are merged, once."""

from prefect.logging import disable_run_logger

from blocks import git
from blocks.ledger import Ledger
from blocks.local_forge import LocalForge
from blocks.pricing import Pricing
from tasks.edits import EditBlock
from tasks.merge import merge
from tasks.models import ChangeContext, Edits, TestResult, Verdict

REPO = "sample/textkit"
FIX = EditBlock(
    path="textkit/slug.py",
    search="    slug = words[0]\n",
    replace='    if not words:\n        return ""\n    slug = words[0]\n',
)
GREEN = TestResult(passed=True, exit_code=0, passed_count=32)
APPROVED = Verdict(decision="approve", reasons=["fine"])


def _context(forge: LocalForge, ledger: Ledger) -> ChangeContext:
    base = forge.head_sha(REPO)
    change = ledger.start_change(REPO, 1, "slugify crashes", "r", None, "default", base)
    assert change.id is not None
    return ChangeContext(
        change_id=change.id,
        run_id="run",
        issue=forge.get_issue(REPO, 1),
        base_sha=base,
        test_command="python -m pytest -q",
    )


def _commit_on_main(forge: LocalForge, path: str, search: str, replace: str) -> None:
    ws = forge.workspace(REPO)
    target = ws / path
    target.write_text(
        target.read_text().replace(search, replace, 1) if search else target.read_text() + replace
    )
    git.commit_all(ws, "someone else's change")
    git.git(ws, "push", "--quiet", "origin", "HEAD:refs/heads/main")


def _run(ctx: ChangeContext, forge: LocalForge, ledger: Ledger, result: TestResult = GREEN):  # type: ignore[no-untyped-def]
    with disable_run_logger():
        return merge.fn(
            ctx, forge, ledger, Pricing(), Edits(ok=True, blocks=[FIX]), result, APPROVED, 1
        )


def test_merge_is_refused_when_tests_failed(demo) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    red = TestResult(passed=False, exit_code=1, failed_count=1)
    outcome = _run(_context(forge, ledger), forge, ledger, red)
    assert not outcome.merged and "tests must pass" in outcome.reason
    assert forge.pull_requests(REPO) == []


def test_merge_is_refused_on_a_conflict_with_the_current_base(demo) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    ctx = _context(forge, ledger)
    _commit_on_main(
        forge, "textkit/slug.py", "    slug = words[0]\n", "    slug = words[0] if words else ''\n"
    )
    base = forge.head_sha(REPO)
    outcome = _run(ctx, forge, ledger)
    assert not outcome.merged and "conflicts" in outcome.reason
    assert forge.head_sha(REPO) == base


def test_merge_is_refused_when_tests_fail_on_the_merged_result(demo) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    ctx = _context(forge, ledger)
    # Main gains a test that the change breaks; the branch alone was green.
    _commit_on_main(
        forge,
        "tests/test_slug.py",
        "",
        "\n\ndef test_empty_title_raises():\n    with pytest.raises(IndexError):\n        slugify('')\n",
    )
    base = forge.head_sha(REPO)
    outcome = _run(ctx, forge, ledger)
    assert not outcome.merged and "tests fail on the merge with the current base" in outcome.reason
    assert forge.head_sha(REPO) == base


def test_merging_twice_opens_one_pull_request_and_merges_once(demo) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    ctx = _context(forge, ledger)
    first = _run(ctx, forge, ledger)
    second = _run(ctx, forge, ledger)
    assert first.merged and second.merged
    assert first.merged_sha == second.merged_sha == forge.head_sha(REPO)
    assert len(forge.pull_requests(REPO)) == 1
    merges = git.out(forge.bare_path(REPO), "rev-list", "--merges", "main").split()
    assert merges == [first.merged_sha]
    assert forge.get_issue(REPO, 1).state == "closed"
    assert len([c for c in forge.comments(REPO, 1) if c.startswith("Resolved by")]) == 1
