"""Resume benchmark: a change fails (or its process is killed with SIGKILL) at the start of each
step, then is retried through Prefect; how many tokens did the retry spend again on steps that had
already completed? Goal: 0, with one pull request and one merge.

Needs a Prefect server: ``PREFECT_API_URL`` (the demo's server works: run ``make demo`` first).
Rerun: python -m benchmarks resume
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blocks import git
from blocks.ledger import LLMCall
from mergemeter.demo import fresh_demo
from mergemeter.sample import default_route
from tasks.faults import FAULTS_ENV

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("plan", "implement", "test", "review", "merge")
# Inside a step: the model has answered (and been paid) but the step has not finished.
MID_STEP = ("plan-answered", "implement-answered", "review-answered")
REPO = "sample/textkit"
FIRST_RUN = """
import sys
from blocks.ledger import Ledger
from blocks.local_forge import LocalForge
from flows.resolve import resolve_issue
from mergemeter.sample import default_route
resolve_issue(repo="sample/textkit", number=1, title="slugify crashes on empty input",
              forge=LocalForge(root=sys.argv[1]), route=default_route(),
              ledger=Ledger(database_url=sys.argv[2]))
"""


@dataclass
class ResumeResult:
    step: str
    mode: str
    first_exit: int
    first_tokens: int
    first_cost: float
    retry_tokens: int
    retry_cost: float
    respent_tokens: int
    duplicate_rows: int
    status: str
    pull_requests: int
    merges: int
    main_green: bool


def _tokens(rows: list[LLMCall]) -> int:
    return sum(r.prompt_tokens + r.completion_tokens for r in rows)


def _environment(api_url: str, folder: Path, faults: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(folder / "results"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MERGEMETER_HOME": str(folder / "home"),
        FAULTS_ENV: str(faults),
    }


async def _mark_crashed_if_running(flow_run_id: str) -> None:
    """A killed process leaves its run Running; mark it Crashed as Prefect would, so it can be retried."""
    from prefect import get_client
    from prefect.states import Crashed

    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
        if run.state is not None and run.state.is_running():
            await client.set_flow_run_state(
                flow_run_id, Crashed(message="process killed"), force=True
            )  # type: ignore[arg-type]


def run_scenario(step: str, mode: str, api_url: str, folder: Path) -> ResumeResult:
    """Fail or kill at the start of ``step``, retry with `prefect flow-run retry`, measure."""
    forge, ledger = fresh_demo(folder / "demo")
    env = _environment(api_url, folder, _plan_fault(folder, step, mode))
    first = subprocess.run(
        [sys.executable, "-c", FIRST_RUN, str(forge.root_path), ledger.url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    before = ledger.calls()
    [change] = ledger.changes()
    assert change.flow_run_id, f"the first run left no change row:\n{first.stderr[-2000:]}"
    with _api(api_url):
        asyncio.run(_mark_crashed_if_running(change.flow_run_id))
    retry = subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), "flow-run", "retry", change.flow_run_id,
         "--entrypoint", "flows/resolve.py:resolve_issue"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return _measure(
        step, mode, first.returncode, forge, ledger, before, retry.stdout + retry.stderr
    )


def run_deployment_scenario(step: str, mode: str, api_url: str, folder: Path) -> ResumeResult:
    """The UI's Retry: a deployment run served by `mergemeter serve`, set to AwaitingRetry."""
    from prefect.deployments import run_deployment
    from prefect.states import AwaitingRetry

    forge, ledger = fresh_demo(folder / "demo")
    env = {
        **_environment(api_url, folder, _plan_fault(folder, step, mode)),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log = open(folder / "serve.log", "w")  # noqa: SIM115 - lives as long as the server process
    server = subprocess.Popen(
        [sys.executable, "-m", "deployments.serve", "--only", "resolve-issue"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        parameters = {
            "repo": REPO, "number": 1, "title": "slugify crashes on empty input",
            "forge": {"root": str(forge.root_path)}, "ledger": {"database_url": ledger.url},
            "route": default_route().model_dump(mode="json", exclude={"block_type_slug"}),
        }  # fmt: skip
        with _api(api_url):
            run = _wait_for_deployment(
                lambda: run_deployment("resolve-issue/on-demand", parameters=parameters, timeout=0)
            )
            first_state = asyncio.run(_wait_final(run.id))
            before = ledger.calls()
            retried = asyncio.run(_set_state(run.id, AwaitingRetry()))
            final_state = asyncio.run(_wait_final(run.id, after=retried))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    exit_code = -9 if first_state == "CRASHED" else 1
    return _measure(
        step,
        mode,
        exit_code,
        forge,
        ledger,
        before,
        f"final state {final_state}; see {folder / 'serve.log'}",
    )


def _api(api_url: str) -> Any:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: api_url})


def _plan_fault(folder: Path, step: str, mode: str) -> Path:
    faults = folder / "faults.json"
    faults.write_text(json.dumps({step: mode}))
    return faults


def _wait_for_deployment(start: Any, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return start()
        except Exception:  # the served deployment is not registered yet
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


async def _wait_final(flow_run_id: Any, after: Any = None, timeout_s: float = 600) -> str:
    """Wait for a final state newer than the state ``after`` (by id)."""
    from prefect import get_client

    deadline = time.monotonic() + timeout_s
    async with get_client() as client:
        while time.monotonic() < deadline:
            state = (await client.read_flow_run(flow_run_id)).state
            if state is not None and state.is_final() and (after is None or state.id != after):
                return state.type.value
            await asyncio.sleep(0.5)
    raise TimeoutError(f"flow run {flow_run_id} did not finish in {timeout_s}s")


async def _set_state(flow_run_id: Any, state: Any) -> Any:
    """Set the run's state as the UI's Retry button does; returns the new state's id."""
    from prefect import get_client

    async with get_client() as client:
        result = await client.set_flow_run_state(flow_run_id, state, force=True)
        return result.state.id if result.state is not None else None


def _measure(
    step: str, mode: str, first_exit: int, forge: Any, ledger: Any, before: list[LLMCall], log: str
) -> ResumeResult:
    from tasks.workspace import checkout, run_test_command

    after = ledger.calls()
    seen = {r.id for r in before}
    added = [r for r in after if r.id not in seen]
    done_before = {(r.step, r.attempt) for r in before if r.ok}
    keys = [(r.step, r.attempt, r.call_index) for r in after]
    [change] = ledger.changes()
    merges = git.out(forge.bare_path(REPO), "rev-list", "--merges", "main").split()
    with checkout(forge, REPO, "main") as workspace:
        green = run_test_command(workspace, "python -m pytest -q").passed
    if change.status != "accepted":
        raise RuntimeError(f"the retry did not finish the change ({change.status}):\n{log[-4000:]}")
    return ResumeResult(
        step=step, mode=mode, first_exit=first_exit,
        first_tokens=_tokens(before), first_cost=sum(r.cost_usd for r in before),
        retry_tokens=_tokens(added), retry_cost=sum(r.cost_usd for r in added),
        respent_tokens=_tokens([r for r in added if (r.step, r.attempt) in done_before]),
        duplicate_rows=len(keys) - len(set(keys)), status=change.status,
        pull_requests=len(forge.pull_requests(REPO)), merges=len(merges), main_green=green,
    )  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks resume", description=__doc__)
    parser.add_argument(
        "--steps", nargs="*", default=[*STEPS, *MID_STEP], choices=[*STEPS, *MID_STEP]
    )
    parser.add_argument("--modes", nargs="*", default=["fail", "kill"], choices=["fail", "kill"])
    args = parser.parse_args(argv)
    api_url = os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    print("command: python -m benchmarks resume   (Prefect server:", api_url + ")")
    print(
        f"{'fault':<26} {'first run':>16} {'retry':>16} {'re-spent':>9} {'PRs':>4} {'merges':>6}  main"
    )
    clean = True
    for mode in args.modes:
        for step in args.steps:
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="mm-resume-") as tmp:
                r = run_scenario(step, mode, api_url, Path(tmp))
            clean &= (
                r.respent_tokens == 0 and r.pull_requests == 1 and r.merges == 1 and r.main_green
            )
            print(
                f"{mode + ' at ' + step:<26} {r.first_tokens:>6} tok ${r.first_cost:.4f} "
                f"{r.retry_tokens:>6} tok ${r.retry_cost:.4f} {r.respent_tokens:>9} {r.pull_requests:>4} "
                f"{r.merges:>6}  {'green' if r.main_green else 'RED'}   [{time.monotonic() - started:.0f}s]"
            )
    return 0 if clean else 1
