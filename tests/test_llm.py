"""The metered call: every row is priced as litellm prices it, and billed before it is parsed."""

from pathlib import Path

import pytest
from prefect.logging import disable_run_logger

from blocks.ledger import Ledger
from blocks.model_route import ModelChoice, ModelRoute
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


def test_model_without_a_price_is_an_error_and_still_recorded(ledger: Ledger) -> None:
    litellm = _litellm()
    from litellm import CustomLLM, ModelResponse

    class Unpriced(CustomLLM):
        def completion(self, *args, **kwargs) -> ModelResponse:  # type: ignore[no-untyped-def]
            response = ModelResponse()
            response.choices[0].message.content = "ok"  # type: ignore[union-attr]
            return response

    litellm.custom_provider_map = [
        *[p for p in litellm.custom_provider_map if p["provider"] != "unpriced"],
        {"provider": "unpriced", "custom_handler": Unpriced()},
    ]
    route = ModelRoute(name="x", roles={"coder": ModelChoice(model="unpriced/some-model")})
    change_id = _change(ledger)
    with pytest.raises(UnknownPrice, match="unpriced/some-model"):
        complete(
            ledger=ledger,
            route=route,
            change_id=change_id,
            step="implement",
            attempt=1,
            role="coder",
            messages=MESSAGES,
            replay_key="k",
        )
    [row] = ledger.calls(change_id)
    assert not row.ok and row.model == "unpriced/some-model"


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
