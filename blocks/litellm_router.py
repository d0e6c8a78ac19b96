"""A litellm Router over a route's candidates, for callers that want litellm to do the fallbacks.

The pipeline does not use it (see `blocks.routing`, rule 7): a Router hides fallback requests from
the ledger and zeroes ``completion_cost`` for models missing from litellm's price map.

Facts about litellm 1.110.2's Router this module relies on, pinned by tests/test_routing.py:
each Router attempt is one HTTP request (the OpenAI SDK's own retries do not run under the Router;
deployments say ``max_retries=0`` too); a retry waits out the server's ``retry-after``; the
deployment's ``model_info.id`` comes back as ``response._hidden_params["model_id"]``
(`answered_by`); building a Router registers unknown models in litellm's process-wide price map
without prices, after which ``completion_cost`` silently answers 0.0 — so a routed call's cost is
``price_of(answered_by(response)).cost(...)``, never litellm's. Measured, not pinned: without a
``retry-after`` a retry backs off 0.5 s × 2^n plus up to 0.75 s of jitter, and one more such
wait comes before a fallback that follows retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.routing import NO_KEY, Candidate, RoutePolicy, check_unique_labels


def litellm_router_kwargs(
    candidates: Sequence[Candidate], policy: RoutePolicy | None = None, *, sensitive: bool = False
) -> dict[str, Any]:
    """``litellm.Router(**kwargs)`` for `choose`'s list: call ``router.completion(model=
    candidates[0].label, ...)``. It holds api keys in clear: pass it to the Router, never log it.

    Each candidate is one deployment named by its label (also its ``model_info.id``, which
    `answered_by` reads back), one HTTP request per attempt (``max_retries=0``). The
    primary falls back to the rest in order. Rate limits, 5xx and timeouts get
    ``policy.num_retries`` retries per candidate; every other error none (``retry_policy``).
    Cooldowns are off: the policy decides per call, not a Router's memory of earlier ones.
    """
    policy = policy or RoutePolicy()
    if not candidates:
        raise ValueError("a Router needs at least one candidate")
    check_unique_labels(candidates)
    hosted = [c.label for c in candidates if c.tier == "hosted"]
    if sensitive and hosted:
        raise ValueError(f"sensitive repository: hosted candidates {hosted} may not be routed to")
    names = [c.label for c in candidates]
    retries = policy.num_retries
    return {
        "model_list": [_deployment(c, policy) for c in candidates],
        "fallbacks": [{names[0]: names[1:]}] if len(names) > 1 else [],
        "num_retries": retries,
        "retry_after": policy.retry_after_seconds,
        "retry_policy": {
            "RateLimitErrorRetries": retries,
            "InternalServerErrorRetries": retries,
            "ServiceUnavailableErrorRetries": retries,
            "TimeoutErrorRetries": retries,
            "AuthenticationErrorRetries": 0,
            "BadRequestErrorRetries": 0,  # includes ContextWindowExceededError
            "ContentPolicyViolationErrorRetries": 0,
            "NotFoundErrorRetries": 0,
            "DefaultRetries": 0,  # connection refused, 403, ...: next candidate at once
        },
        "timeout": policy.timeout_seconds,
        "disable_cooldowns": True,
    }


def _deployment(candidate: Candidate, policy: RoutePolicy) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": candidate.model,
        "max_retries": 0,
        "timeout": policy.timeout_seconds,
    }
    if candidate.api_base:
        params["api_base"] = candidate.api_base
    if candidate.api_key is not None:
        params["api_key"] = candidate.api_key.get_secret_value()
    elif candidate.tier == "self-hosted":
        params["api_key"] = NO_KEY
    return {
        "model_name": candidate.label,
        "litellm_params": params,
        "model_info": {"id": candidate.label},
    }


def answered_by(response: Any, candidates: Sequence[Candidate]) -> Candidate:
    """The candidate whose deployment produced a Router ``response`` (its ``model_id``)."""
    hidden = getattr(response, "_hidden_params", None) or {}
    deployment = hidden.get("model_id")
    for candidate in candidates:
        if candidate.label == deployment:
            return candidate
    known = [c.label for c in candidates]
    raise LookupError(f"response came from deployment {deployment!r}, none of {known}")


def routing_attempts(response: Any) -> tuple[int, int]:
    """``(retries, fallbacks)`` behind a Router ``response``, from its litellm headers: retries
    made on the candidate that answered (not on those that failed before it), fallbacks taken."""
    hidden = getattr(response, "_hidden_params", None) or {}
    headers = hidden.get("additional_headers") or {}
    retries = int(headers.get("x-litellm-attempted-retries") or 0)
    fallbacks = int(headers.get("x-litellm-attempted-fallbacks") or 0)
    return retries, fallbacks
