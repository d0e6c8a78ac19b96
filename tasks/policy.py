"""What every pipeline task shares: its cache policy and when a retry can help."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from tasks.llm import ProviderError

# A step's result is reused only for the very same inputs (the change's run id is one of them,
# so a retry of a run reuses it and a new run does not) and the same task code. The budget is
# not an input of the result: raising a cap and retrying must reuse what was already paid for.
STEP_CACHE = (INPUTS - "budget") + TASK_SOURCE

PROVIDER_RETRY_DELAYS = [2, 5, 15]
T = TypeVar("T")


def retry_when(should_retry: Callable[[BaseException], bool]) -> Callable[[Any, Any, Any], bool]:
    """A Prefect ``retry_condition_fn``: retry only failures ``should_retry`` accepts."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except Exception as exc:
            return should_retry(exc)
        return False

    return condition


# Provider outages are retried; bad credentials, an unknown price, a missing cassette or a bug
# will not heal by waiting.
retry_on_provider_error = retry_when(lambda exc: isinstance(exc, ProviderError) and exc.transient)


def model_step(name: str) -> Callable[[Callable[..., T]], Any]:
    """The decorator of a step that asks a model: provider retries, cached on its inputs."""
    return task(
        retries=len(PROVIDER_RETRY_DELAYS),
        retry_delay_seconds=PROVIDER_RETRY_DELAYS,
        retry_condition_fn=retry_on_provider_error,
        cache_policy=STEP_CACHE,
        persist_result=True,
        task_run_name=name,
    )
