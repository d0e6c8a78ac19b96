"""The metered call: every row is priced as litellm prices it, and billed before it is parsed."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.logging import disable_run_logger

from blocks.ledger import Ledger
from blocks.model_route import ModelChoice, ModelRoute
from blocks.pricing import PriceOverride
from mergemeter.sample import default_route
from tasks.llm import ProviderError, UnknownPrice, _litellm, complete
from tasks.models import ChangeContext
from tasks.plan import PlanError, plan
from tasks.replay import CassetteMissing, real_model

MESSAGES = [{"role": "user", "content": "Plan a fix for the empty-input crash in slugify."}]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")


def _change(ledger: Ledger) -> int:
    change = ledger.start_change("sample/textkit", 1, "t", "r", None, "default", "sha")
    assert change.id is not None
    return change.id


def test_each_ledger_row_costs_what_litellm_says(ledger: Ledger) -> None:
    litellm = _litellm()
    change_id = _change(ledger)
    route = default_route()
    for step, attempt, role in [
        ("plan", 1, "planner"),
        ("implement", 1, "coder"),
        ("review", 1, "reviewer"),
    ]:
        complete(
            ledger=ledger,
            route=route,
            change_id=change_id,
            step=step,
            attempt=attempt,
            role=role,
            messages=MESSAGES,
            replay_key=f"sample/textkit#1/{step}/{attempt}",
        )
    rows = ledger.calls(change_id)
    assert len(rows) == 3
    for row in rows:
        priced_as = real_model(row.model)
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=priced_as,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
        )
        assert row.cost_usd == pytest.approx(prompt_cost + completion_cost, rel=1e-12)
        assert row.cost_usd > 0
        assert row.price_source.startswith("replay-priced as")
    assert rows[0].prompt_tokens == litellm.token_counter(
        model="claude-sonnet-4-5", messages=MESSAGES
    )
    assert ledger.totals([change_id]).cost_usd == pytest.approx(sum(r.cost_usd for r in rows))


def test_missing_cassette_answer_names_the_key(ledger: Ledger) -> None:
    with pytest.raises(CassetteMissing, match=r"sample/textkit#1/plan/7"):
        complete(
            ledger=ledger,
            route=default_route(),
            change_id=_change(ledger),
            step="plan",
            attempt=7,
            role="planner",
            messages=MESSAGES,
            replay_key="sample/textkit#1/plan/7",
        )


def _unpriced_provider() -> list[int]:
    """Register a provider litellm has no price for; returns the list its calls append to."""
    litellm = _litellm()
    from litellm import CustomLLM, ModelResponse
    from litellm.types.utils import Usage

    sent: list[int] = []

    class Unpriced(CustomLLM):
        def completion(self, *args, **kwargs) -> ModelResponse:  # type: ignore[no-untyped-def]
            sent.append(1)
            response = ModelResponse()
            response.choices[0].message.content = "ok"  # type: ignore[union-attr]
            response.usage = Usage(prompt_tokens=1000, completion_tokens=200, total_tokens=1200)  # type: ignore[attr-defined]
            return response

    litellm.custom_provider_map = [
        *[p for p in litellm.custom_provider_map if p["provider"] != "unpriced"],
        {"provider": "unpriced", "custom_handler": Unpriced()},
    ]
    return sent


def _call(ledger: Ledger, route: ModelRoute, change_id: int) -> str:
    return complete(
        ledger=ledger,
        route=route,
        change_id=change_id,
        step="implement",
        attempt=1,
        role="coder",
        messages=MESSAGES,
        replay_key="k",
    )


def test_model_without_a_price_is_refused_before_anything_is_sent(ledger: Ledger) -> None:
    sent = _unpriced_provider()
    route = ModelRoute(name="x", roles={"coder": ModelChoice(model="unpriced/some-model")})
    with pytest.raises(UnknownPrice, match="unpriced/some-model"):
        _call(ledger, route, _change(ledger))
    assert sent == [] and ledger.calls() == []


def test_a_route_can_declare_a_model_free(ledger: Ledger) -> None:
    sent = _unpriced_provider()
    route = ModelRoute(
        name="x",
        roles={"coder": ModelChoice(model="unpriced/some-model")},
        free_models=["unpriced/some-model"],
    )
    assert _call(ledger, route, _change(ledger)) == "ok"
    [row] = ledger.calls()
    assert (
        sent == [1]
        and row.ok
        and row.cost_usd == 0
        and row.price_source.startswith("declared free")
    )


def test_price_override_in_force_on_the_day_of_the_call_is_used(ledger: Ledger) -> None:
    _unpriced_provider()
    today = datetime.now(UTC).date()
    route = ModelRoute(
        name="x",
        roles={"coder": ModelChoice(model="unpriced/some-model")},
        prices=[
            PriceOverride(
                model="unpriced/some-model",
                effective_from=today - timedelta(days=30),
                input_usd_per_mtok=1.0,
                output_usd_per_mtok=2.0,
            ),
            PriceOverride(
                model="unpriced/some-model",
                effective_from=today,
                input_usd_per_mtok=0.5,
                output_usd_per_mtok=1.0,
            ),
            PriceOverride(
                model="unpriced/some-model",
                effective_from=today + timedelta(days=1),
                input_usd_per_mtok=9.0,
                output_usd_per_mtok=9.0,
            ),
        ],
    )
    _call(ledger, route, _change(ledger))
    [row] = ledger.calls()
    assert row.cost_usd == pytest.approx(1000 * 0.5e-6 + 200 * 1.0e-6)
    assert row.price_source == f"route price from {today.isoformat()}"


def test_cache_hits_are_billed_at_the_cache_read_price(ledger: Ledger, tmp_path: Path) -> None:
    litellm = _litellm()
    cassette = tmp_path / "cassette.yaml"
    cassette.write_text('"a/b#1":\n  implement:\n    1: {answer: "done", cached_tokens: 12}\n')
    route = default_route().model_copy(update={"cassette": str(cassette)})
    complete(
        ledger=ledger,
        route=route,
        change_id=_change(ledger),
        step="implement",
        attempt=1,
        role="coder",
        messages=MESSAGES,
        replay_key="a/b#1/implement/1",
    )
    [row] = ledger.calls()
    assert row.cached_tokens == 12 and row.ok and row.reserved_usd == 0
    from litellm import ModelResponse
    from litellm.types.utils import PromptTokensDetailsWrapper, Usage

    same = ModelResponse(model="deepseek/deepseek-v4-flash")
    same.usage = Usage(  # type: ignore[attr-defined]
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.prompt_tokens + row.completion_tokens,
        prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=12),
    )
    uncached = ModelResponse(model="deepseek/deepseek-v4-flash")
    uncached.usage = Usage(  # type: ignore[attr-defined]
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.prompt_tokens + row.completion_tokens,
    )
    assert row.cost_usd == pytest.approx(litellm.completion_cost(completion_response=same))
    assert row.cost_usd < litellm.completion_cost(completion_response=uncached)


def test_provider_failure_is_recorded_then_raised(ledger: Ledger) -> None:
    route = ModelRoute(
        name="down",
        roles={"coder": ModelChoice(model="openai/gpt-4o-mini", api_base="http://127.0.0.1:9")},
    )
    change_id = _change(ledger)
    with pytest.raises(ProviderError):
        complete(
            ledger=ledger,
            route=route,
            change_id=change_id,
            step="implement",
            attempt=1,
            role="coder",
            messages=MESSAGES,
            replay_key="k",
            max_tokens=16,
        )
    [row] = ledger.calls(change_id)
    assert not row.ok and row.error and row.cost_usd == 0


def test_an_answer_that_fails_to_parse_is_billed(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    forge, ledger = demo
    cassette = tmp_path / "cassette.yaml"
    cassette.write_text('"sample/textkit#1":\n  plan:\n    1: "this is not json"\n')
    route = default_route().model_copy(update={"cassette": str(cassette)})
    change = ledger.start_change(
        "sample/textkit", 1, "t", route.name, None, "default", forge.head_sha("sample/textkit")
    )
    ctx = ChangeContext(
        change_id=change.id,
        run_id="r",
        issue=forge.get_issue("sample/textkit", 1),
        base_sha=change.base_sha,
        test_command="python -m pytest -q",
    )
    with disable_run_logger(), pytest.raises(PlanError):
        plan.fn(ctx, forge, route, ledger)
    [row] = ledger.calls(change.id)
    assert row.ok and row.cost_usd > 0 and row.completion_tokens > 0
