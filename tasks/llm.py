"""The one metered LLM call. Every model call in mergemeter goes through `complete`.

Order of events, each committed to the ledger:
1. price the model (route override in force, declared free, or litellm's map) — unknown: refuse;
2. count the prompt with litellm's token counter, and under the ledger's write lock check the
   budget against the worst case and insert the call row holding that worst case as a reservation;
3. call litellm; 4. settle the row with the real usage and cost, releasing the reservation —
   before the answer is returned to be parsed, so an unparseable answer is still billed and a crash
   mid-call leaves the reservation counted.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

from blocks.budget import Budget
from blocks.ledger import Ledger, LLMCall
from blocks.model_route import ModelRoute
from blocks.pricing import TokenPrice, override_in_force, override_price
from mergemeter.settings import apply_offline_defaults
from tasks import replay


class UnknownPrice(RuntimeError):
    """Neither the route nor litellm's price map prices the model; nothing was sent."""


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


def price_for(route: ModelRoute, model: str, at: datetime) -> TokenPrice | None:
    """The route's own price for ``model`` at ``at``, or None to use litellm's completion_cost."""
    override = override_in_force(route.prices, model, at)
    if override is not None:
        return override_price(override)
    if model in route.free_models:
        return TokenPrice(
            input=0, output=0, cache_read=0, source=f"declared free by route {route.name}"
        )
    return None


def _map_price(litellm: Any, model: str) -> TokenPrice:
    """litellm's standard (peak) price for ``model``: the upper bound used for the worst case."""
    info = litellm.model_cost.get(model)
    if info is None:
        try:
            info = litellm.get_model_info(model)
        except Exception as exc:
            raise UnknownPrice(
                f"no known price for {model}: litellm's price map has no entry"
            ) from exc
    try:
        prompt = float(info["input_cost_per_token"])
        output = float(info["output_cost_per_token"])
    except (KeyError, TypeError):
        raise UnknownPrice(
            f"no known price for {model}: its price map entry has no token prices"
        ) from None
    cache_read = info.get("cache_read_input_token_cost")
    source = "litellm price map"
    if model.startswith(f"{replay.PROVIDER}/"):
        source = f"replay-priced as {replay.real_model(model)} (litellm price map)"
    return TokenPrice(
        input=prompt, output=output, cache_read=float(cache_read or prompt), source=source
    )


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
    budget: Budget | None = None,
) -> str:
    """Call the route's model for ``role``, record the call, and return the answer text."""
    litellm = _litellm()
    choice = route.for_role(role)
    model = choice.model
    provider = model.split("/", 1)[0] if "/" in model else ""
    kwargs: dict[str, Any] = {"max_tokens": max_tokens}
    if provider == replay.PROVIDER:
        replay.register(litellm, model)
        replay.lookup(route.cassette or "", replay_key)  # a missing answer is named, not wrapped
        kwargs["metadata"] = {"replay_key": replay_key, "replay_cassette": route.cassette or ""}
    if choice.api_base:
        kwargs["api_base"] = choice.api_base

    now = datetime.now(UTC)
    own_price = price_for(route, model, now)
    bound = own_price or _map_price(litellm, model)
    prompt_estimate = litellm.token_counter(model=replay.real_model(model), messages=messages)
    worst_tokens = prompt_estimate + max_tokens
    worst_usd = prompt_estimate * bound.input + max_tokens * bound.output

    flow_run_id, task_run_id = _run_ids()
    row = LLMCall(
        change_id=change_id,
        step=step,
        attempt=attempt,
        role=role,
        model=model,
        provider=provider,
        price_source=bound.source,
        reserved_usd=worst_usd,
        reserved_tokens=worst_tokens,
        ok=False,
        error="in flight",
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        at=now,
    )
    check = None
    if budget is not None:
        change = ledger.change(change_id)

        def check(session: Any) -> None:
            budget.check(session, change, worst_usd, worst_tokens, now)

    row = ledger.record_call(row, before_insert=check)

    started = time.monotonic()
    try:
        response = litellm.completion(model=model, messages=messages, **kwargs)
    except Exception as exc:
        row.latency_ms = int((time.monotonic() - started) * 1000)
        _settle(ledger, row, error=f"{type(exc).__name__}: {exc}")
        raise ProviderError(f"{model} failed for {replay_key}: {exc}") from exc
    row.latency_ms = int((time.monotonic() - started) * 1000)

    usage = getattr(response, "usage", None)
    row.prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
    row.completion_tokens = getattr(usage, "completion_tokens", 0) or 0
    details = getattr(usage, "prompt_tokens_details", None)
    row.cached_tokens = (getattr(details, "cached_tokens", 0) or 0) if details else 0
    if own_price is not None:
        cost: float | None = own_price.cost(
            row.prompt_tokens, row.completion_tokens, row.cached_tokens
        )
    else:
        try:
            cost = litellm.completion_cost(completion_response=response)
        except Exception as exc:  # litellm raises when it cannot price the answer
            _settle(ledger, row, error=f"no price: {type(exc).__name__}: {exc}")
            raise UnknownPrice(f"no known price for {model}: {exc}") from exc
    if cost is None:
        _settle(ledger, row, error="litellm returned no price")
        raise UnknownPrice(f"no known price for {model}")
    row.cost_usd = float(cost)
    _settle(ledger, row)
    content = response.choices[0].message.content
    return content or ""


def _settle(ledger: Ledger, row: LLMCall, error: str = "") -> None:
    row.reserved_usd, row.reserved_tokens = 0.0, 0
    row.ok, row.error = not error, error[:2000]
    ledger.update_call(row)
