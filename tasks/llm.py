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

import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

from blocks.budget import Budget
from blocks.ledger import Ledger, LLMCall
from blocks.model_route import ModelRoute
from blocks.pricing import TokenPrice, override_in_force, override_price
from blocks.routing import NO_KEY, REVIEWER, Candidate, RoutePolicy, choose_and_fit
from mergemeter.settings import apply_offline_defaults
from tasks import faults, replay
from tasks.models import ChangeContext


class UnknownPrice(RuntimeError):
    """Neither the route nor litellm's price map prices the model; nothing was sent."""


class ProviderError(RuntimeError):
    """The model provider failed; the failed call is in the ledger.

    ``fallback``: another candidate may answer; ``transient``: retrying the step later may help.
    """

    def __init__(self, message: str, fallback: bool = False, transient: bool = True) -> None:
        super().__init__(message)
        self.fallback, self.transient = fallback, transient


@cache
def _litellm() -> Any:
    """Import litellm on first use: the import costs seconds and memory, and must stay offline."""
    apply_offline_defaults()
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    # litellm logs every provider exception with a traceback; ours are re-raised with context.
    logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
    logging.getLogger("LiteLLM Router").setLevel(logging.CRITICAL)
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


def map_price(litellm: Any, model: str) -> TokenPrice:
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


# Errors worth trying the next candidate for: the provider, not the request, is the problem.
_FALLBACK = (
    "RateLimitError",
    "InternalServerError",
    "ServiceUnavailableError",
    "BadGatewayError",
    "Timeout",
    "APIConnectionError",
    "ContextWindowExceededError",
    "AuthenticationError",
    "NotFoundError",
)
# Of those, the ones a later retry of the whole step may cure.
_TRANSIENT = _FALLBACK[:6]


def _own_price(route: ModelRoute, candidate: Candidate, at: datetime) -> TokenPrice | None:
    """A price the route states (route override, candidate override, declared free), or None."""
    price = price_for(route, candidate.model, at)
    if price is None and candidate.prices:
        override = override_in_force(candidate.prices, candidate.model, at)
        price = override_price(override) if override is not None else None
    return price


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
    sensitive: bool = False,
    required_strength: int = 1,
    prefer_model: str | None = None,
) -> str:
    """Route the call (blocks/routing.py), record it, and return the answer text.

    ``prefer_model`` (a route mode's choice) goes first if the policy allows it at all.

    Candidates are tried in the policy's order: a rate limit, 5xx, timeout, bad credentials or a
    context error at one provider moves to the next candidate; each request is its own ledger
    row, checked against the budget before it is sent.
    """
    litellm = _litellm()
    now = datetime.now(UTC)
    team, policy = route.candidates_for(role)

    def price_of(candidate: Candidate) -> TokenPrice:
        if candidate.model.startswith(f"{replay.PROVIDER}/"):
            replay.register(litellm, candidate.model)
        return _own_price(route, candidate, now) or map_price(litellm, candidate.model)

    exclude = _models_that_coded(ledger, change_id) if role == REVIEWER else set()
    routed = choose_and_fit(
        role, team, messages, max_tokens=max_tokens, required_strength=required_strength,
        attempt=attempt, sensitive=sensitive, exclude_models=exclude, policy=policy, price_of=price_of,
    )  # fmt: skip
    order = (
        sorted(routed.candidates, key=lambda c: c.model != prefer_model)
        if prefer_model
        else routed.candidates
    )
    failure: ProviderError | None = None
    for candidate in order:
        try:
            return _call_one(
                litellm, ledger, route, candidate, policy, change_id, step, attempt, role,
                routed.messages, replay_key, max_tokens, budget,
            )  # fmt: skip
        except ProviderError as exc:
            failure = exc
            if not exc.fallback:
                raise
    assert failure is not None
    raise failure


def ask(
    ctx: ChangeContext,
    route: ModelRoute,
    ledger: Ledger,
    budget: Budget | None,
    *,
    step: str,
    attempt: int,
    role: str,
    system: str,
    prompt: str,
    prefer_model: str | None = None,
) -> str:
    """`complete` for a pipeline step: the change's context supplies ids, routing needs and key."""
    return complete(
        ledger=ledger,
        route=route,
        change_id=ctx.change_id,
        step=step,
        attempt=attempt,
        role=role,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        replay_key=f"{ctx.replay_prefix}/{step}/{attempt}",
        budget=budget,
        sensitive=ctx.sensitive,
        required_strength=ctx.required_strength,
        prefer_model=prefer_model,
    )


def _models_that_coded(ledger: Ledger, change_id: int) -> set[str]:
    return {c.model for c in ledger.calls(change_id) if c.step == "implement" and c.ok}


def _call_one(
    litellm: Any,
    ledger: Ledger,
    route: ModelRoute,
    candidate: Candidate,
    policy: RoutePolicy,
    change_id: int,
    step: str,
    attempt: int,
    role: str,
    messages: list[dict[str, Any]],
    replay_key: str,
    max_tokens: int,
    budget: Budget | None,
) -> str:
    """One request to one candidate: price, reserve under the budget, call, settle."""
    model = candidate.model
    provider = model.split("/", 1)[0] if "/" in model else ""
    kwargs: dict[str, Any] = {"max_tokens": max_tokens, "timeout": policy.timeout_seconds}
    if provider == replay.PROVIDER:
        replay.register(litellm, model)
        replay.lookup(route.cassette or "", replay_key)  # a missing answer is named, not wrapped
        kwargs["metadata"] = {"replay_key": replay_key, "replay_cassette": route.cassette or ""}
    else:
        # litellm hands this to the provider SDK, which retries 429/5xx/timeouts with backoff.
        kwargs["num_retries"] = policy.num_retries
    if candidate.api_base:
        kwargs["api_base"] = candidate.api_base
    if candidate.api_key is not None:
        kwargs["api_key"] = candidate.api_key.get_secret_value()
    elif candidate.tier == "self-hosted":
        kwargs["api_key"] = NO_KEY  # never send a hosted provider's environment key to it

    # A step that is re-run after its process died mid-step asks the same again: the answer it
    # already paid for is in the ledger, so the model is not asked (or paid) twice.
    asked = _prompt_hash(model, role, messages, max_tokens)
    paid_for = ledger.answered(change_id, step, attempt, asked)
    if paid_for is not None:
        return paid_for

    now = datetime.now(UTC)
    own_price = _own_price(route, candidate, now)
    bound = own_price or map_price(litellm, model)
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
        prompt_hash=asked,
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
        kind = type(exc).__name__
        raise ProviderError(
            f"{model} failed for {replay_key}: {exc}",
            fallback=kind in _FALLBACK,
            transient=kind in _TRANSIENT,
        ) from exc
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
            cost = litellm.completion_cost(completion_response=response, model=model)
        except Exception as exc:  # litellm raises when it cannot price the answer
            _settle(ledger, row, error=f"no price: {type(exc).__name__}: {exc}")
            raise UnknownPrice(f"no known price for {model}: {exc}") from exc
    if cost is None:
        _settle(ledger, row, error="litellm returned no price")
        raise UnknownPrice(f"no known price for {model}")
    row.cost_usd = float(cost)
    row.answer = response.choices[0].message.content or ""
    _settle(ledger, row)
    faults.inject(f"{step}-answered")  # a crash between the answer and its use, for tests
    return row.answer


def _prompt_hash(model: str, role: str, messages: list[dict[str, Any]], max_tokens: int) -> str:
    text = json.dumps([model, role, messages, max_tokens], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _settle(ledger: Ledger, row: LLMCall, error: str = "") -> None:
    row.reserved_usd, row.reserved_tokens = 0.0, 0
    row.ok, row.error = not error, error[:2000]
    ledger.update_call(row)
