"""The Forge protocol: what the pipeline needs from a code host, and the values it exchanges.

Two implementations follow this protocol: `LocalForge` (embedded, SQLite + bare git) and, later,
a GitHub forge. Errors are exceptions that carry what the caller needs to decide what to do next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Issue(BaseModel):
    """An issue as the pipeline sees it."""

    repo: str = Field(description="Repository, as owner/name.")
    number: int = Field(description="Issue number within the repository.")
    title: str = Field(description="Issue title.")
    body: str = Field(default="", description="Issue body (markdown).")
    labels: list[str] = Field(default_factory=list, description="Labels on the issue.")
    state: str = Field(default="open", description="open or closed.")

    @property
    def ref(self) -> str:
        """`owner/name#N`, the way people write it."""
        return f"{self.repo}#{self.number}"


class PullRequest(BaseModel):
    """A pull request on the forge."""

    repo: str = Field(description="Repository, as owner/name.")
    number: int = Field(description="Pull request number (shares the issue numbering).")
    head: str = Field(description="Head branch.")
    base: str = Field(description="Base branch.")
    title: str = Field(description="Title.")
    state: str = Field(default="open", description="open, merged or closed.")
    merged_sha: str | None = Field(default=None, description="Merge commit, once merged.")
    url: str = Field(default="", description="Where a person can look at it.")


class ForgeError(Exception):
    """Base of the forge's refusals."""


class IssueNotFound(ForgeError):
    """No such issue in the repository."""


class MergeRefused(ForgeError):
    """The forge would not merge the pull request."""

    def __init__(self, pr: PullRequest, reason: str) -> None:
        super().__init__(f"{pr.repo}#{pr.number}: {reason}")
        self.pr = pr
        self.reason = reason


class MergeConflict(MergeRefused):
    """The head does not merge cleanly into the current base."""


class AlreadyMerged(MergeRefused):
    """The pull request was merged before; its merge commit is on `pr.merged_sha`."""


class PullRequestClosed(MergeRefused):
    """The pull request was closed without merging."""


class BaseMoved(MergeRefused):
    """The base changed since the merge result was tested; test again on the new base."""


@runtime_checkable
class Forge(Protocol):
    """What the pipeline needs from a code host."""

    def ready_issues(self, repo: str, label: str) -> list[Issue]: ...

    def get_issue(self, repo: str, number: int) -> Issue: ...

    def is_sensitive(self, repo: str) -> bool: ...

    def claim(self, issue: Issue, claimant: str) -> bool: ...

    def head_sha(self, repo: str, branch: str | None = None) -> str: ...

    def workspace(self, repo: str, ref: str | None = None) -> Path: ...

    def push(self, workspace: Path, branch: str) -> None: ...

    def open_pull_request(
        self, issue: Issue, branch: str, title: str, body: str
    ) -> PullRequest: ...

    def merge(self, pr: PullRequest, expected_base: str | None = None) -> str: ...

    def comment(self, repo: str, number: int, body: str, key: str | None = None) -> None: ...

    def add_label(self, issue: Issue, label: str) -> None: ...

    def close_issue(self, issue: Issue, comment: str) -> None: ...
