from pathlib import Path

import pytest

from blocks import git
from blocks.forge import AlreadyMerged, Forge, MergeConflict, PullRequestClosed
from blocks.local_forge import LocalForge


@pytest.fixture
def forge(tmp_path: Path) -> LocalForge:
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("VALUE = 1\n")
    forge = LocalForge(root=str(tmp_path / "forge"))
    forge.create_repository("acme/app", source)
    return forge


def _branch_with(forge: LocalForge, branch: str, content: str) -> None:
    ws = forge.workspace("acme/app")
    (ws / "app.py").write_text(content)
    git.commit_all(ws, f"change on {branch}")
    forge.push(ws, branch)


def test_local_forge_follows_the_forge_protocol(forge: LocalForge) -> None:
    assert isinstance(forge, Forge)


def test_ready_issues_are_open_labelled_and_unclaimed(forge: LocalForge) -> None:
    first = forge.add_issue("acme/app", "one", labels=["agent-ready"])
    forge.add_issue("acme/app", "two", labels=["question"])
    third = forge.add_issue("acme/app", "three", labels=["agent-ready"])
    assert [i.number for i in forge.ready_issues("acme/app", "agent-ready")] == [1, 3]
    forge.claim(first, "run-a")
    forge.close_issue(third, "done")
    assert forge.ready_issues("acme/app", "agent-ready") == []


def test_second_claim_of_an_issue_fails(forge: LocalForge) -> None:
    issue = forge.add_issue("acme/app", "bug", labels=["agent-ready"])
    assert forge.claim(issue, "run-a") is True
    assert forge.claim(issue, "run-b") is False
    assert forge.claim(issue, "run-a") is True, "the holder's retry keeps its claim"


def test_pull_request_is_idempotent_per_branch_and_shares_numbering(forge: LocalForge) -> None:
    issue = forge.add_issue("acme/app", "bug")
    _branch_with(forge, "fix", "VALUE = 2\n")
    pr = forge.open_pull_request(issue, "fix", "Fix", "Closes #1")
    again = forge.open_pull_request(issue, "fix", "Fix", "Closes #1")
    assert pr.number == again.number == 2
    assert len(forge.pull_requests("acme/app")) == 1


def test_merge_then_merge_again_is_refused_as_already_merged(forge: LocalForge) -> None:
    issue = forge.add_issue("acme/app", "bug")
    _branch_with(forge, "fix", "VALUE = 2\n")
    pr = forge.open_pull_request(issue, "fix", "Fix", "")
    sha = forge.merge(pr)
    assert forge.head_sha("acme/app") == sha
    ws = forge.workspace("acme/app")
    assert (ws / "app.py").read_text() == "VALUE = 2\n"
    with pytest.raises(AlreadyMerged) as refused:
        forge.merge(pr)
    assert refused.value.pr.merged_sha == sha


def test_merge_refuses_a_conflict_with_the_current_base(forge: LocalForge) -> None:
    issue = forge.add_issue("acme/app", "bug")
    _branch_with(forge, "left", "VALUE = 2\n")
    _branch_with(forge, "right", "VALUE = 3\n")
    left = forge.open_pull_request(issue, "left", "Left", "")
    right = forge.open_pull_request(issue, "right", "Right", "")
    forge.merge(left)
    base = forge.head_sha("acme/app")
    with pytest.raises(MergeConflict):
        forge.merge(right)
    assert forge.head_sha("acme/app") == base, "a refused merge leaves the base alone"


def test_merge_refuses_a_closed_pull_request(forge: LocalForge) -> None:
    issue = forge.add_issue("acme/app", "bug")
    _branch_with(forge, "fix", "VALUE = 2\n")
    pr = forge.open_pull_request(issue, "fix", "Fix", "")
    forge.close_pull_request(pr)
    with pytest.raises(PullRequestClosed):
        forge.merge(pr)


def test_closing_a_closed_issue_adds_nothing(forge: LocalForge) -> None:
    issue = forge.add_issue("acme/app", "bug")
    forge.close_issue(issue, "fixed")
    forge.close_issue(issue, "fixed again")
    assert forge.get_issue("acme/app", 1).state == "closed"
    assert forge.comments("acme/app", 1) == ["fixed"]


def test_a_keyed_comment_is_posted_once(forge: LocalForge) -> None:
    forge.add_issue("acme/app", "bug")
    forge.comment("acme/app", 1, "handed over", key="change-1-handoff")
    forge.comment("acme/app", 1, "handed over", key="change-1-handoff")
    forge.comment("acme/app", 1, "another note")
    assert forge.comments("acme/app", 1) == ["handed over", "another note"]
