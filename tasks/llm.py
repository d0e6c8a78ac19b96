"""The one metered LLM call. Every model call in mergemeter goes through `complete`.

The ledger row is committed before the answer is returned to be parsed, so an answer that
fails to parse (or a crash right after the call) is still billed. A model without a known price
is an error, never a silent zero.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

from blocks.ledger import Ledger, LLMCall
from blocks.model_route import ModelRoute
from mergemeter.settings import apply_offline_defaults
from tasks import replay


class UnknownPrice(RuntimeError):
    """litellm cannot price the model's answer; the call is recorded and the change stops."""


class ProviderError(RuntimeError):
    """The model provider failed; the failed call is in the ledger."""


@cache
def _litellm() -> Any:
    """Import litellm on first use: the import costs seconds and memory, and must stay offline."""
    apply_offline_defaults()
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    # litellm logs every provider exception with a traceback; ours are re-raised with context.
    logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
    return litellm


def _run_ids() -> tuple[str | None, str | None]:
    from prefect.runtime import flow_run, task_run

    return (str(flow_run.id) if flow_run.id else None, str(task_run.id) if task_run.id else None)


def complete(
    *,
    ledger: Ledger,
    route: ModelRoute,
    change_id: int,
    step: str,
    attempt: int,
    role: str,
    messages: list[dict[str, str]],
    replay_key: str,
    max_tokens: int = 4096,
) -> str:
    """Call the route's model for ``role``, record the call, and return the answer text."""
    litellm = _litellm()
    choice = route.for_role(role)
    provider = choice.model.split("/", 1)[0] if "/" in choice.model else ""
    kwargs: dict[str, Any] = {"max_tokens": max_tokens}
    price_source = "litellm price map"
    if provider == replay.PROVIDER:
        replay.register(litellm, choice.model)
        replay.lookup(route.cassette or "", replay_key)  # a missing answer is named, not wrapped
        kwargs["metadata"] = {"replay_key": replay_key, "replay_cassette": route.cassette or ""}
        price_source = f"replay-priced as {replay.real_model(choice.model)} (litellm price map)"
    if choice.api_base:
        kwargs["api_base"] = choice.api_base

    flow_run_id, task_run_id = _run_ids()
    row = LLMCall(
        change_id=change_id,
        step=step,
        attempt=attempt,
        role=role,
        model=choice.model,
        provider=provider,
        price_source=price_source,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
    )
    started = time.monotonic()
    try:
        response = litellm.completion(model=choice.model, messages=messages, **kwargs)
    except Exception as exc:
        row.ok, row.error = False, f"{type(exc).__name__}: {exc}"[:2000]
        row.latency_ms = int((time.monotonic() - started) * 1000)
        ledger.record_call(row)
        raise ProviderError(f"{choice.model} failed for {replay_key}: {exc}") from exc

    row.latency_ms = int((time.monotonic() - started) * 1000)
    usage = getattr(response, "usage", None)
    row.prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
    row.completion_tokens = getattr(usage, "completion_tokens", 0) or 0
    details = getattr(usage, "prompt_tokens_details", None)
    row.cached_tokens = (getattr(details, "cached_tokens", 0) or 0) if details else 0
    try:
        cost = litellm.completion_cost(completion_response=response)
    except Exception as exc:  # litellm raises when the model is not in its price map
        cost, row.error = None, f"{type(exc).__name__}: {exc}"[:2000]
    if cost is None:
        row.ok = False
        row.error = row.error or "litellm returned no price"
        ledger.record_call(row)
        raise UnknownPrice(f"no known price for {choice.model}: {row.error}")
    row.cost_usd = float(cost)
    ledger.record_call(row)
    return response.choices[0].message.content or ""


def completion_cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """litellm's price for a call of this size (used to check ledger rows against litellm)."""
    litellm = _litellm()
    if model.startswith(f"{replay.PROVIDER}/"):
        replay.register(litellm, model)
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    return float(prompt_cost + completion_cost)
