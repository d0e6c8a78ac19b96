"""Budgets are hard caps: a call that could cross one is never sent, whatever the sequence."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blocks.budget import Budget, BudgetExceeded
from blocks.ledger import Ledger
from tasks.llm import complete
from tests.fakes import priced_route, register_sized_provider

call = st.tuples(
    st.integers(min_value=1, max_value=400),  # prompt words
    st.integers(min_value=1, max_value=2000),  # max_tokens
    st.integers(min_value=0, max_value=3000),  # tokens the model would like to answer with
)


def _spend(ledger: Ledger, change_id: int | None = None) -> tuple[float, int]:
    rows = ledger.calls(change_id)
    return sum(r.cost_usd for r in rows), sum(r.prompt_tokens + r.completion_tokens for r in rows)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    calls=st.lists(call, min_size=1, max_size=12),
    input_price=st.floats(min_value=0.01, max_value=20),
    output_price=st.floats(min_value=0.01, max_value=80),
    change_usd=st.floats(min_value=0.0, max_value=0.2),
    change_tokens=st.integers(min_value=0, max_value=20_000),
    fleet_usd=st.floats(min_value=0.0, max_value=0.3),
)
def test_spend_never_exceeds_any_cap(
    tmp_path_factory: pytest.TempPathFactory,
    calls: list[tuple[int, int, int]],
    input_price: float,
    output_price: float,
    change_usd: float,
    change_tokens: int,
    fleet_usd: float,
) -> None:
    register_sized_provider()
    ledger = Ledger(database_url=f"sqlite:///{tmp_path_factory.mktemp('budget') / 'ledger.db'}")
    route = priced_route(input_price, output_price)
    budget = Budget(
        per_change_usd=change_usd, per_change_tokens=change_tokens, fleet_day_usd=fleet_usd
    )
    changes = [
        ledger.start_change("a/b", n, "t", route.name, None, "default", "sha").id for n in (1, 2)
    ]
    refused = 0
    for index, (words, max_tokens, wanted) in enumerate(calls):
        change_id = changes[index % 2]
        assert change_id is not None
        try:
            complete(
                ledger=ledger,
                route=route,
                change_id=change_id,
                step="implement",
                attempt=index + 1,
                role="coder",
                messages=[{"role": "user", "content": "x " * words + f"[answer:{wanted}]"}],
                replay_key="-",
                max_tokens=max_tokens,
                budget=budget,
            )
        except BudgetExceeded:
            refused += 1
    for change_id in changes:
        usd, tokens = _spend(ledger, change_id)
        assert usd <= change_usd + 1e-12
        assert tokens <= change_tokens
    assert _spend(ledger)[0] <= fleet_usd + 1e-12
    assert len(ledger.calls()) == len(calls) - refused, "a refused call leaves no row"


def test_refused_call_is_never_sent_and_names_the_cap(tmp_path: Path) -> None:
    register_sized_provider()
    ledger = Ledger(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    route = priced_route(1.0, 10.0)
    change = ledger.start_change("a/b", 1, "t", route.name, None, "default", "sha")
    assert change.id is not None
    budget = Budget(per_change_usd=0.01)
    # Worst case: ~6 prompt tokens + 2,000 × $10/M = $0.02 > $0.01, so the call is refused
    # even though this model would answer with 5 tokens.
    with pytest.raises(BudgetExceeded, match=r"change budget \$0\.0100"):
        complete(
            ledger=ledger,
            route=route,
            change_id=change.id,
            step="plan",
            attempt=1,
            role="planner",
            messages=[{"role": "user", "content": "short [answer:5]"}],
            replay_key="-",
            max_tokens=2000,
            budget=budget,
        )
    assert ledger.calls() == []


def test_in_flight_calls_count_at_their_worst_case(tmp_path: Path) -> None:
    from blocks.ledger import LLMCall

    ledger = Ledger(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    route = priced_route(1.0, 10.0)
    change = ledger.start_change("a/b", 1, "t", route.name, None, "default", "sha")
    assert change.id is not None
    # A call that was reserved and never settled (its process died mid-call).
    ledger.record_call(
        LLMCall(change_id=change.id, step="plan", attempt=1, role="planner", model="sized/m",
                reserved_usd=0.009, reserved_tokens=900, ok=False, error="in flight")
    )  # fmt: skip
    register_sized_provider()
    with pytest.raises(BudgetExceeded):
        complete(
            ledger=ledger,
            route=route,
            change_id=change.id,
            step="plan",
            attempt=2,
            role="planner",
            messages=[{"role": "user", "content": "short [answer:5]"}],
            replay_key="-",
            max_tokens=100,
            budget=Budget(per_change_usd=0.0095),
        )
