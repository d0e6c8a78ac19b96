"""What every pipeline task shares: its cache policy and when a retry can help."""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE

from tasks.llm import ProviderError

# A step's result is reused only for the very same inputs (the change's run id is one of them,
# so a retry of a run reuses it and a new run does not) and the same task code. The budget is
# not an input of the result: raising a cap and retrying must reuse what was already paid for.
STEP_CACHE = (INPUTS - "budget") + TASK_SOURCE

PROVIDER_RETRY_DELAYS = [2, 5, 15]


def retry_on_provider_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry provider outages; bad credentials, an unknown price, a missing cassette or a bug
    will not heal by waiting."""
    try:
        state.result()
    except ProviderError as exc:
        return exc.transient
    except Exception:
        return False
    return False
