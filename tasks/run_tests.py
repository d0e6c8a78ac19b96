"""test: the repository's test command on the base plus the change's edits, in a sandbox."""

from __future__ import annotations

from prefect import task

from blocks.forge import Forge
from tasks import faults
from tasks.models import ChangeContext, Edits, TestResult
from tasks.policy import STEP_CACHE
from tasks.workspace import checkout, run_test_command


@task(cache_policy=STEP_CACHE, persist_result=True, task_run_name="test-attempt-{attempt}")
def run_tests(ctx: ChangeContext, forge: Forge, edits: Edits, attempt: int) -> TestResult:
    faults.inject("test")
    with checkout(forge, ctx.issue.repo, ctx.base_sha, edits.blocks) as workspace:
        return run_test_command(workspace, ctx.test_command)
