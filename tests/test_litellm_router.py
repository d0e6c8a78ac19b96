"""litellm's Router over real HTTP against the OpenAI-compatible stand-in
(tests/standins/openai_server.py), built from a route's candidates by blocks/litellm_router.py.

These pin the litellm facts the routing policy relies on. Retries stay at most one (litellm backs
off 0.5–1.25 s per retry) and timeouts under a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from blocks.litellm_router import answered_by, litellm_router_kwargs, routing_attempts
from blocks.routing import NO_KEY, Candidate, RoutePolicy, candidate_price, choose
from tests.standins import OpenAIStandIn
from tests.test_routing import MESSAGES, candidate, labels


@pytest.fixture
def router_of(litellm: Any) -> Iterator[Any]:
    """Builds Routers from `litellm_router_kwargs`; restores the price map a Router pollutes."""
    saved = dict(litellm.model_cost)

    def build(candidates: list[Candidate], **policy: Any) -> Any:
        return litellm.Router(**litellm_router_kwargs(candidates, RoutePolicy(**policy)))

    yield build
    litellm.model_cost.clear()
    litellm.model_cost.update(saved)


def served(
    name: str,
    server: OpenAIStandIn,
    usd: float = 1.0,
    tier: str = "self-hosted",
    window: int | None = None,
    api_key: str | None = "sk-test",
) -> Candidate:
    """A candidate answered by ``server``, at ``usd`` per million tokens in and out."""
    return candidate(
        name,
        strength=5,
        usd_in=usd,
        usd_out=usd,
        tier=tier,
        window=window or server.context_window,
        model="openai/standin-model",
        api_base=server.api_base,
        api_key=api_key,
    )


@pytest.fixture
def pair() -> Iterator[tuple[OpenAIStandIn, OpenAIStandIn]]:
    with (
        OpenAIStandIn(name="primary", script=lambda body: "from primary") as primary,
        OpenAIStandIn(name="backup", script=lambda body: "from backup") as backup,
    ):
        yield primary, backup


def ask(router: Any, chosen: list[Candidate]) -> Any:
    return router.completion(model=chosen[0].label, messages=MESSAGES, max_tokens=50)


def test_a_rate_limited_primary_falls_back_to_the_backup_with_one_request_each(
    router_of: Any, pair: tuple[OpenAIStandIn, OpenAIStandIn]
) -> None:
    primary, backup = pair
    chosen = [served("primary", primary), served("backup", backup)]
    primary.fail_next(status=429, times=5)
    response = ask(router_of(chosen, num_retries=0), chosen)
    assert (primary.request_count, backup.request_count) == (1, 1)
    assert response.choices[0].message.content == "from backup"
    assert answered_by(response, chosen).label == "backup"
    assert routing_attempts(response) == (0, 1)


def test_a_rate_limit_that_clears_is_answered_by_the_primary_on_retry(
    router_of: Any, pair: tuple[OpenAIStandIn, OpenAIStandIn]
) -> None:
    primary, backup = pair
    chosen = [served("primary", primary), served("backup", backup)]
    primary.fail_next(status=429, times=1, retry_after=1)
    started = time.monotonic()
    response = ask(router_of(chosen, num_retries=1), chosen)
    assert time.monotonic() - started >= 1.0  # waited out the server's retry-after
    assert (primary.request_count, backup.request_count) == (2, 0)
    assert answered_by(response, chosen).label == "primary"
    assert routing_attempts(response) == (1, 0)


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_falls_back_to_the_backup(
    router_of: Any, pair: tuple[OpenAIStandIn, OpenAIStandIn], status: int
) -> None:
    primary, backup = pair
    chosen = [served("primary", primary), served("backup", backup)]
    primary.fail_next(status=status, times=5)
    response = ask(router_of(chosen, num_retries=0), chosen)
    assert (primary.request_count, backup.request_count) == (1, 1)  # no OpenAI SDK retries
    assert answered_by(response, chosen).label == "backup"


def test_a_timeout_falls_back_to_the_backup(
    router_of: Any, pair: tuple[OpenAIStandIn, OpenAIStandIn]
) -> None:
    primary, backup = pair
    chosen = [served("primary", primary), served("backup", backup)]
    primary.slow_next(seconds=3)
    started = time.monotonic()
    response = ask(router_of(chosen, num_retries=0, timeout_seconds=0.5), chosen)
    assert time.monotonic() - started < 2.5
    assert answered_by(response, chosen).label == "backup"
    assert (primary.request_count, backup.request_count) == (1, 1)


def test_a_wrong_key_is_not_retried_and_raises_an_authentication_error(
    litellm: Any, router_of: Any
) -> None:
    with OpenAIStandIn(name="keyed", api_key="sk-right") as server:
        chosen = [served("keyed", server, api_key="sk-wrong")]
        with pytest.raises(litellm.AuthenticationError):
            ask(router_of(chosen, num_retries=2), chosen)
        assert server.request_count == 1


def test_a_wrong_key_on_the_primary_is_not_retried_but_the_backup_with_its_own_key_answers(
    router_of: Any,
) -> None:
    with (
        OpenAIStandIn(name="primary", api_key="sk-right") as primary,
        OpenAIStandIn(name="backup", script=lambda body: "from backup") as backup,
    ):
        chosen = [served("primary", primary, api_key="sk-wrong"), served("backup", backup)]
        response = ask(router_of(chosen, num_retries=2), chosen)
        assert (primary.request_count, backup.request_count) == (1, 1)
    assert answered_by(response, chosen).label == "backup"


def test_a_context_window_error_is_not_retried_on_the_same_server(
    router_of: Any,
) -> None:
    with (
        OpenAIStandIn(name="small", context_window=60) as small,
        OpenAIStandIn(name="large", script=lambda body: "fits", context_window=32_768) as large,
    ):
        # the route claims more than the server has: the server's 400 is the last line of defence
        chosen = [served("small", small, window=8192), served("large", large, usd=2.0)]
        response = ask(router_of(chosen, num_retries=2), chosen)
        assert (small.request_count, large.request_count) == (1, 1)
    assert answered_by(response, chosen).label == "large"


def test_a_long_prompt_is_routed_to_the_larger_window_without_touching_the_small_one(
    litellm: Any, router_of: Any
) -> None:
    with (
        OpenAIStandIn(name="small", context_window=500) as small,
        OpenAIStandIn(name="large", script=lambda body: "fits", context_window=32_768) as large,
    ):
        team = [served("small", small, usd=0.1), served("large", large, usd=2.0)]
        messages = [MESSAGES[0], {"role": "user", "content": "diff line " * 300}]
        prompt = litellm.token_counter(model="openai/standin-model", messages=messages)
        chosen = choose("coder", team, required_strength=5, prompt_tokens=prompt, max_tokens=100)
        router = router_of(chosen)
        response = router.completion(model=chosen[0].label, messages=messages, max_tokens=100)
        assert (small.request_count, large.request_count) == (0, 1)
    assert answered_by(response, chosen).label == "large"


def test_a_sensitive_route_never_sends_a_request_to_a_hosted_candidate(router_of: Any) -> None:
    with (
        OpenAIStandIn(name="self-hosted") as local,
        OpenAIStandIn(name="hosted", script=lambda body: "leaked") as hosted,
    ):
        team = [served("hosted", hosted, usd=0.01, tier="hosted"), served("local", local, usd=1)]
        chosen = choose("coder", team, required_strength=5, sensitive=True)
        assert labels(chosen) == ["local"]
        local.fail_next(status=500, times=5)
        with pytest.raises(Exception, match="injected HTTP 500"):
            ask(router_of(chosen, num_retries=0), chosen)
        with pytest.raises(ValueError, match="hosted candidates"):
            litellm_router_kwargs(team, sensitive=True)
        assert hosted.request_count == 0
        assert local.request_count == 1


def test_a_self_hosted_candidate_without_a_key_never_gets_the_providers_env_key(
    router_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    with OpenAIStandIn(name="self-hosted") as local:
        chosen = [served("local", local, api_key=None)]
        ask(router_of(chosen), chosen)
        assert local.requests[0].headers["authorization"] == f"Bearer {NO_KEY}"


def test_the_answering_candidates_own_price_bills_the_call_not_litellms_zero(
    litellm: Any, router_of: Any, pair: tuple[OpenAIStandIn, OpenAIStandIn]
) -> None:
    primary, backup = pair
    chosen = [served("primary", primary, usd=1.0), served("backup", backup, usd=5.0)]
    primary.fail_next(status=500)
    response = ask(router_of(chosen, num_retries=0), chosen)
    usage = response.usage
    price = candidate_price(answered_by(response, chosen))
    cost = price.cost(usage.prompt_tokens, usage.completion_tokens, 0)
    assert cost == pytest.approx((usage.prompt_tokens + usage.completion_tokens) * 5e-6)
    assert litellm.completion_cost(completion_response=response) == 0.0  # the trap this avoids
    with pytest.raises(LookupError, match="none of"):
        answered_by(response, chosen[:1])
