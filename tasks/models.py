"""The plain values tasks hand each other: cacheable, serialisable, enough for the next step.

A step on a fresh machine can continue from these alone; none refers to files on disk.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from blocks.forge import Issue
from tasks.edits import EditBlock


class ChangeContext(BaseModel):
    """What every step of one change knows."""

    change_id: int = Field(description="Ledger id of the change.")
    run_id: str = Field(description="Flow run of the change; a retry keeps it, a new run does not.")
    issue: Issue = Field(description="The issue being resolved, as read when the change began.")
    base_sha: str = Field(description="Base commit the change starts from.")
    test_command: str = Field(description="Command that runs the repository's tests.")
    sensitive: bool = Field(
        default=False, description="The repository may reach self-hosted models only."
    )
    required_strength: int = Field(
        default=1, ge=1, le=10, description="Least model strength the change needs."
    )
    unit: int = Field(
        default=0, description="Unit number of a decomposed issue (0: not decomposed)."
    )
    unit_count: int = Field(default=1, description="How many units the issue was decomposed into.")
    unit_summary: str = Field(default="", description="What this unit does.")

    @property
    def replay_prefix(self) -> str:
        return self.issue.ref if not self.unit else f"{self.issue.ref}.u{self.unit}"

    @property
    def last_unit(self) -> bool:
        return self.unit == self.unit_count or not self.unit


class Unit(BaseModel):
    """One small, separately merged part of a decomposed issue."""

    summary: str = Field(description="What this unit changes.")
    files: list[str] = Field(default_factory=list, description="Files it reads and touches.")


class Plan(BaseModel):
    summary: str = Field(description="What the change will do, in a sentence or two.")
    files: list[str] = Field(default_factory=list, description="Files to read and touch.")
    acceptance: list[str] = Field(default_factory=list, description="How to tell it is done.")
    units: list[Unit] = Field(
        default_factory=list, description="Ordered units, when the issue is better done in parts."
    )

    def for_unit(self, unit: Unit) -> Plan:
        """The plan narrowed to one unit (what its implement step sees)."""
        return self.model_copy(
            update={"summary": unit.summary, "files": unit.files or self.files, "units": []}
        )


class Edits(BaseModel):
    """The outcome of one implement attempt: edits that apply to the base, or why they do not."""

    ok: bool
    blocks: list[EditBlock] = Field(default_factory=list, description="All edits from the base.")
    diff: str = ""
    lines_added: int = 0
    lines_removed: int = 0
    error: str = ""


class TestResult(BaseModel):
    __test__ = False  # not a pytest class

    passed: bool
    exit_code: int
    passed_count: int = 0
    failed_count: int = 0
    duration_s: float = 0.0
    output_tail: str = ""
    sandbox: str = Field(default="", description="How the run was isolated (see tasks/workspace).")


class Verdict(BaseModel):
    decision: str = Field(description="approve or request_changes.")
    reasons: list[str] = Field(default_factory=list)

    @property
    def approved(self) -> bool:
        return self.decision == "approve"


class MergeOutcome(BaseModel):
    merged: bool
    pr_number: int | None = None
    pr_url: str = ""
    merged_sha: str | None = None
    reason: str = ""
    test_seconds: float = Field(
        default=0.0, description="Time of the test run on the merge result."
    )
