"""Full cost beyond tokens: GPU busy time, review minutes and subscriptions, as SQL over the ledger."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blocks.ledger import CostItem, Ledger, LLMCall
from blocks.pricing import Pricing, Subscription
from blocks.rollups import rollup


def test_every_part_of_the_cost_is_counted_once(tmp_path: Path) -> None:
    ledger = Ledger(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    start = datetime.now(UTC) - timedelta(days=10)
    ids = {}
    for number, route, status in [
        (1, "hosted", "accepted"),
        (2, "hosted", "rejected"),
        (3, "own", "accepted"),
    ]:
        change = ledger.start_change("a/b", number, "t", route, None, "default", "sha")
        ledger.finish_change(change.id, status, attempts=1)  # type: ignore[arg-type]
        ids[number] = change.id
    ledger.record_call(
        LLMCall(
            change_id=ids[1],
            step="plan",
            attempt=1,
            role="planner",
            model="m",
            cost_usd=1.0,
            prompt_tokens=100,
        )
    )
    ledger.record_call(
        LLMCall(
            change_id=ids[2],
            step="plan",
            attempt=1,
            role="planner",
            model="m",
            cost_usd=0.5,
            prompt_tokens=50,
        )
    )
    # A self-hosted model: free per token, busy 30 minutes at $4/GPU hour.
    ledger.record_call(
        LLMCall(
            change_id=ids[3],
            step="plan",
            attempt=1,
            role="planner",
            model="gpu",
            latency_ms=30 * 60_000,
        )
    )
    ledger.record_cost_item(
        CostItem(key="r", change_id=ids[1], kind="review", quantity=20, unit="min", amount_usd=30.0)
    )
    ledger.record_cost_item(
        CostItem(key="c", change_id=ids[2], kind="compute", quantity=60, unit="s", amount_usd=0.25)
    )
    pricing = Pricing(
        gpu_usd_per_hour={"gpu": 4.0},
        subscriptions=[Subscription(name="plan", usd_per_month=300.0, routes=["hosted"])],
    )
    groups, total = rollup(
        ledger, pricing, by="route", since=start, until=start + timedelta(days=30.4375)
    )
    by = {g.group: g for g in groups}
    assert total.tokens_usd == pytest.approx(1.5) and total.gpu_usd == pytest.approx(2.0)
    assert total.review_usd == pytest.approx(30.0) and total.compute_usd == pytest.approx(0.25)
    assert total.subscription_usd == pytest.approx(300.0), "a month's fee for a month's window"
    assert by["hosted"].subscription_usd == pytest.approx(300.0) and by["own"].subscription_usd == 0
    assert by["hosted"].total_usd == pytest.approx(1.5 + 30 + 0.25 + 300)
    assert by["hosted"].cost_per_accepted_change == pytest.approx(331.75)
    assert by["hosted"].wasted_usd == pytest.approx(0.75), "the rejected change's direct cost"
    assert by["own"].cost_per_accepted_change == pytest.approx(2.0)
    assert total.total_usd == pytest.approx(sum(g.total_usd for g in groups))
