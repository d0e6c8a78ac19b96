"""Retry from the failed step, through Prefect, with real processes.

A fault is injected at the start of each step — an exception, or SIGKILL of the process running
the change — and the flow run is retried the way a user would. The retry must spend tokens only on
the steps that had not completed, open one pull request, merge once, and leave main green.
"""

from pathlib import Path

import pytest

from benchmarks.resume import MID_STEP, STEPS, run_scenario

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_url(prefect_server) -> str:  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


@pytest.mark.parametrize("mode", ["fail", "kill"])
@pytest.mark.parametrize("step", STEPS)
def test_retry_spends_nothing_again_on_completed_steps(
    step: str, mode: str, api_url: str, tmp_path: Path
) -> None:
    result = run_scenario(step, mode, api_url, tmp_path)
    assert result.first_exit != 0, "the injected fault must stop the first run"
    if mode == "kill":
        assert result.first_exit == -9
    assert result.status == "accepted"
    assert result.respent_tokens == 0
    assert result.duplicate_rows == 0
    assert (result.first_tokens == 0) == (step == "plan"), "steps before the fault were paid once"
    assert result.retry_tokens > 0 or step in ("merge",)
    assert result.pull_requests == 1 and result.merges == 1
    assert result.main_green


def test_ui_retry_of_a_deployment_run_reuses_completed_steps(api_url: str, tmp_path: Path) -> None:
    """The UI's Retry button: the served deployment's run is set to AwaitingRetry and re-run."""
    from benchmarks.resume import run_deployment_scenario

    result = run_deployment_scenario("merge", "fail", api_url, tmp_path)
    assert result.first_tokens > 0
    assert result.respent_tokens == 0 and result.retry_tokens == 0
    assert result.pull_requests == 1 and result.merges == 1 and result.main_green


@pytest.mark.parametrize("step", MID_STEP)
def test_a_kill_after_the_model_answered_does_not_pay_for_the_answer_twice(
    step: str, api_url: str, tmp_path: Path
) -> None:
    result = run_scenario(step, "kill", api_url, tmp_path)
    assert result.first_exit == -9 and result.first_tokens > 0
    assert result.status == "accepted"
    assert result.respent_tokens == 0 and result.duplicate_rows == 0
    assert result.pull_requests == 1 and result.merges == 1 and result.main_green
