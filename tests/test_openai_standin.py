"""litellm over real HTTP against the OpenAI-compatible stand-in (tests/standins/openai_server.py).

These pin down what a self-hosted OpenAI-compatible server (vLLM, Ollama, llama.cpp) looks like
to mergemeter through litellm: the answer and usage it reports, the exception type of each
failure, how litellm's Router falls back, and what litellm prices for a model it does not know.
Calls pass ``max_retries=0`` (the OpenAI SDK inside litellm retries twice by default) unless the
test is about retries, so each test takes at most a second or two.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.standins import OpenAIStandIn, count_tokens

MODEL_ID = "standin-model"
MODEL = f"openai/{MODEL_ID}"
KEY = "sk-test"
MESSAGES = [
    {"role": "system", "content": "You are a careful coding agent."},
    {"role": "user", "content": "Fix the crash in slugify on empty input."},
]
PROMPT_TOKENS = sum(count_tokens(m["content"]) for m in MESSAGES)


@pytest.fixture(scope="module")
def litellm() -> Any:
    import litellm

    return litellm


@pytest.fixture(autouse=True)
def _restore_price_map(litellm: Any) -> Iterator[None]:
    """A Router registers its deployments in litellm's process-wide price map; undo that."""
    saved = dict(litellm.model_cost)
    yield
    litellm.model_cost.clear()
    litellm.model_cost.update(saved)


def ask(litellm: Any, server: OpenAIStandIn, **kwargs: Any) -> Any:
    """One litellm call to the stand-in, without the OpenAI SDK's own retries."""
    options: dict[str, Any] = {"api_key": KEY, "max_retries": 0, "messages": MESSAGES}
    options.update(kwargs)
    return litellm.completion(model=MODEL, api_base=server.api_base, **options)


def deployment(name: str, server: OpenAIStandIn, model: str = MODEL) -> dict[str, Any]:
    params = {"model": model, "api_base": server.api_base, "api_key": KEY}
    return {"model_name": name, "litellm_params": params}


# -- answers and usage ------------------------------------------------------------------------


def test_litellm_returns_the_scripted_answers_and_the_usage_the_server_reported(
    litellm: Any,
) -> None:
    with OpenAIStandIn(script=["first answer here", "second"]) as server:
        first = ask(litellm, server)
        second = ask(litellm, server)
        recorded = server.requests

    assert first.choices[0].message.content == "first answer here"
    assert second.choices[0].message.content == "second"
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (PROMPT_TOKENS, 3)
    assert first.usage.total_tokens == PROMPT_TOKENS + 3
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.completion_tokens == 1
    assert len(recorded) == 2
    assert recorded[0].method == "POST" and recorded[0].path == "/v1/chat/completions"
    assert recorded[0].headers["authorization"] == f"Bearer {KEY}"
    assert recorded[0].body == {"model": MODEL_ID, "messages": MESSAGES}


def test_a_list_script_that_runs_out_fails_loudly(litellm: Any) -> None:
    with OpenAIStandIn(script=["only one"]) as server:
        ask(litellm, server)
        with pytest.raises(litellm.InternalServerError, match="ran out of scripted answers"):
            ask(litellm, server)


def test_a_script_that_raises_is_a_server_error_naming_the_exception(litellm: Any) -> None:
    def broken(body: dict[str, Any]) -> str:
        raise KeyError("plan")

    with OpenAIStandIn(name="broken", script=broken) as server:
        with pytest.raises(litellm.InternalServerError, match="KeyError"):
            ask(litellm, server)


def test_a_dict_script_answers_by_marker_and_a_callable_sees_the_request(litellm: Any) -> None:
    script = {"slugify": "PLAN: guard empty input", "review": "LGTM"}
    with OpenAIStandIn(script=script) as server:
        assert ask(litellm, server).choices[0].message.content == "PLAN: guard empty input"
        review = [{"role": "user", "content": "Please review this diff."}]
        assert ask(litellm, server, messages=review).choices[0].message.content == "LGTM"

    def count_messages(body: dict[str, Any]) -> str:
        return f"{len(body['messages'])} messages, temperature {body.get('temperature')}"

    with OpenAIStandIn(script=count_messages) as server:
        answer = ask(litellm, server, temperature=0.2).choices[0].message.content
    assert answer == "2 messages, temperature 0.2"


def test_without_a_script_the_server_echoes_the_last_user_message(litellm: Any) -> None:
    with OpenAIStandIn(name="self-hosted") as server:
        answer = ask(litellm, server).choices[0].message.content
    assert answer == "self-hosted echo: Fix the crash in slugify on empty input."


def test_an_answer_longer_than_max_tokens_is_cut_with_finish_reason_length(litellm: Any) -> None:
    with OpenAIStandIn(script=["one two three four five"]) as server:
        response = ask(litellm, server, max_tokens=2)
    assert response.choices[0].message.content == "one two"
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 2


def test_repeated_leading_messages_are_reported_as_cached_tokens(litellm: Any) -> None:
    follow_up = [
        *MESSAGES,
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "go on"},
    ]
    with OpenAIStandIn(script=lambda body: "done", prompt_cache=True) as server:
        cold = ask(litellm, server)
        warm = ask(litellm, server, messages=follow_up)
    assert cold.usage.prompt_tokens_details.cached_tokens == 0
    assert warm.usage.prompt_tokens == PROMPT_TOKENS + 3
    assert warm.usage.prompt_tokens_details.cached_tokens == PROMPT_TOKENS


def test_a_streamed_answer_arrives_word_by_word_and_ends_with_usage_when_asked(
    litellm: Any,
) -> None:
    with OpenAIStandIn(script=lambda body: "guard the empty string") as server:
        chunks = list(ask(litellm, server, stream=True, stream_options={"include_usage": True}))
        body = server.chat_bodies[0]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "guard the empty string"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, 4)
    rebuilt = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    assert rebuilt.choices[0].message.content == "guard the empty string"
    assert rebuilt.usage.completion_tokens == 4


def test_the_models_endpoint_lists_the_served_model_ids() -> None:
    with OpenAIStandIn(name="vllm", model_ids=["qwen-coder", "llama-3"]) as server:
        with urllib.request.urlopen(f"{server.api_base}/models", timeout=5) as reply:
            listed = json.load(reply)
    assert [m["id"] for m in listed["data"]] == ["qwen-coder", "llama-3"]
    assert {m["owned_by"] for m in listed["data"]} == {"vllm"}


def test_requests_are_recorded_from_concurrent_clients(litellm: Any) -> None:
    with OpenAIStandIn(script=lambda body: "ok") as server:
        threads = [threading.Thread(target=ask, args=(litellm, server)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert server.request_count == 6
        assert len(server.chat_bodies) == 6


# -- faults and the litellm exception each one becomes ----------------------------------------


def test_rate_limit_is_a_rate_limit_error_with_the_servers_retry_after(litellm: Any) -> None:
    with OpenAIStandIn() as server:
        server.fail_next(status=429, retry_after=7)
        with pytest.raises(litellm.RateLimitError) as caught:
            ask(litellm, server)
        assert ask(litellm, server).choices[0].message.content.startswith("self-hosted echo")
        assert server.request_count == 2
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("status", "error_name"),
    [
        (500, "InternalServerError"),
        (502, "BadGatewayError"),
        (503, "ServiceUnavailableError"),
        (404, "NotFoundError"),
        (400, "BadRequestError"),
    ],
)
def test_each_http_failure_maps_to_its_litellm_exception(
    litellm: Any, status: int, error_name: str
) -> None:
    with OpenAIStandIn() as server:
        server.fail_next(status=status)
        with pytest.raises(getattr(litellm, error_name)) as caught:
            ask(litellm, server)
    assert type(caught.value).__name__ == error_name
    assert caught.value.status_code == status


def test_an_unknown_model_id_is_not_found(litellm: Any) -> None:
    with OpenAIStandIn(model_ids=["qwen-coder"]) as server:
        with pytest.raises(litellm.NotFoundError, match="does not exist"):
            ask(litellm, server)


def test_the_openai_sdk_inside_litellm_retries_twice_unless_told_not_to(litellm: Any) -> None:
    """One litellm call can be three HTTP requests: the ledger sees one call, the server three."""
    with OpenAIStandIn(script=lambda body: "third time lucky") as server:
        server.fail_next(status=500, times=2)
        response = ask(litellm, server, max_retries=None)
        retries = [r.headers.get("x-stainless-retry-count") for r in server.requests]
    assert response.choices[0].message.content == "third time lucky"
    assert retries == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("window", "max_tokens", "detail"),
    [
        (PROMPT_TOKENS - 1, None, f"your messages resulted in {PROMPT_TOKENS} tokens"),
        (PROMPT_TOKENS + 10, 20, f"you requested {PROMPT_TOKENS + 20} tokens"),
    ],
)
def test_a_prompt_over_the_context_window_is_a_context_window_exceeded_error(
    litellm: Any, window: int, max_tokens: int | None, detail: str
) -> None:
    with OpenAIStandIn(context_window=window) as server:
        with pytest.raises(litellm.ContextWindowExceededError) as caught:
            ask(litellm, server, max_tokens=max_tokens)
    message = str(caught.value)
    assert f"maximum context length is {window} tokens" in message
    assert detail in message
    assert isinstance(caught.value, litellm.BadRequestError)


def test_a_wrong_api_key_is_an_authentication_error(litellm: Any) -> None:
    with OpenAIStandIn(api_key="sk-right") as server:
        with pytest.raises(litellm.AuthenticationError, match="Incorrect API key"):
            ask(litellm, server, api_key="sk-wrong")
        assert ask(litellm, server, api_key="sk-right").choices[0].message.content
        assert server.request_count == 2


def test_a_slow_answer_past_the_timeout_is_a_litellm_timeout(litellm: Any) -> None:
    with OpenAIStandIn() as server:
        server.slow_next(seconds=3)
        started = time.monotonic()
        with pytest.raises(litellm.Timeout):
            ask(litellm, server, timeout=0.5)
        assert time.monotonic() - started < 2
        assert ask(litellm, server, timeout=5).choices[0].message.content  # next one is prompt


# -- litellm Router ---------------------------------------------------------------------------


def test_router_falls_back_to_the_second_server_when_the_first_is_rate_limited(
    litellm: Any,
) -> None:
    with (
        OpenAIStandIn(name="primary", script=lambda body: "from primary") as primary,
        OpenAIStandIn(name="backup", script=lambda body: "from backup") as backup,
    ):
        primary.fail_next(status=429, times=5)
        router = litellm.Router(
            model_list=[deployment("primary", primary), deployment("backup", backup)],
            fallbacks=[{"primary": ["backup"]}],
            num_retries=0,
        )
        response = router.completion(model="primary", messages=MESSAGES)
        assert (primary.request_count, backup.request_count) == (1, 1)
    assert response.choices[0].message.content == "from backup"
    assert response._hidden_params["api_base"] == backup.api_base


def test_router_moves_an_overlong_prompt_to_the_larger_context_window(litellm: Any) -> None:
    with (
        OpenAIStandIn(name="small", context_window=PROMPT_TOKENS - 1) as small,
        OpenAIStandIn(name="large", script=lambda body: "fits", context_window=32768) as large,
    ):
        router = litellm.Router(
            model_list=[deployment("small", small), deployment("large", large)],
            context_window_fallbacks=[{"small": ["large"]}],
            num_retries=0,
        )
        response = router.completion(model="small", messages=MESSAGES)
        assert (small.request_count, large.request_count) == (1, 1)
    assert response.choices[0].message.content == "fits"


# -- what litellm prices for a model it does not know -----------------------------------------


def test_completion_cost_refuses_an_unknown_openai_model(litellm: Any) -> None:
    with OpenAIStandIn() as server:
        response = ask(litellm, server)
    with pytest.raises(litellm.exceptions.ModelNotMappedError, match="isn't mapped yet"):
        litellm.completion_cost(completion_response=response)


def test_per_call_prices_are_applied_to_the_servers_usage(litellm: Any) -> None:
    with OpenAIStandIn(script=lambda body: "two words") as server:
        response = ask(litellm, server, input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    expected = PROMPT_TOKENS * 1e-6 + 2 * 2e-6
    assert response._hidden_params["response_cost"] == pytest.approx(expected)


def test_a_router_deployment_makes_completion_cost_price_its_model_at_zero(litellm: Any) -> None:
    """Constructing a Router registers ``openai/<id>`` process-wide with no prices; from then on
    completion_cost answers 0.0 instead of refusing — even for a deployment that was priced."""
    priced = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    with OpenAIStandIn(script=lambda body: "two words") as server:
        route = deployment("priced", server)
        route["model_info"] = priced
        router = litellm.Router(model_list=[route], num_retries=0)
        routed = router.completion(model="priced", messages=MESSAGES)
        direct = ask(litellm, server)
    assert routed._hidden_params["response_cost"] == pytest.approx(PROMPT_TOKENS * 1e-6 + 4e-6)
    assert litellm.model_cost[MODEL] == {}
    assert litellm.completion_cost(completion_response=routed) == 0.0
    assert litellm.completion_cost(completion_response=direct) == 0.0


# -- through mergemeter's metered call --------------------------------------------------------


def test_complete_bills_the_usage_the_self_hosted_server_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blocks.ledger import Ledger
    from blocks.model_route import ModelChoice, ModelRoute
    from blocks.pricing import PriceOverride
    from tasks.llm import complete

    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # the route has no key field; litellm reads this
    ledger = Ledger(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    change = ledger.start_change("sample/textkit", 1, "t", "r", None, "default", "sha")
    assert change.id is not None
    price = PriceOverride(
        model=MODEL,
        effective_from=date(2020, 1, 1),
        input_usd_per_mtok=1.0,
        output_usd_per_mtok=2.0,
        cache_read_usd_per_mtok=0.5,
    )
    with (
        OpenAIStandIn(name="hosted") as hosted,
        OpenAIStandIn(name="self-hosted", script=["four word plan here", "ok"]) as local,
    ):
        local.prompt_cache = True
        route = ModelRoute(
            name="self-hosted-team",
            roles={"planner": ModelChoice(model=MODEL, api_base=local.api_base)},
            prices=[price],
        )
        for attempt in (1, 2):
            answer = complete(
                ledger=ledger,
                route=route,
                change_id=change.id,
                step="plan",
                attempt=attempt,
                role="planner",
                messages=MESSAGES,
                replay_key=f"sample/textkit#1/plan/{attempt}",
                max_tokens=64,
            )
        assert hosted.request_count == 0
        assert local.request_count == 2
    assert answer == "ok"
    first, second = ledger.calls(change.id)
    assert (first.prompt_tokens, first.completion_tokens, first.cached_tokens) == (
        PROMPT_TOKENS,
        4,
        0,
    )
    assert first.cost_usd == pytest.approx((PROMPT_TOKENS * 1.0 + 4 * 2.0) / 1e6)
    assert second.cached_tokens == PROMPT_TOKENS
    assert second.cost_usd == pytest.approx((PROMPT_TOKENS * 0.5 + 1 * 2.0) / 1e6)
