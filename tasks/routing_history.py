"""The ledger as the learned route mode reads it: every attempt of every finished change, by one
SQL query, and what each model's recorded attempts cost.

An attempt is the calls of one (change, step, attempt); it passed when its change was accepted and
it is the change's last attempt at the step, so every earlier attempt of a change failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import and_, case, func
from sqlmodel import select

from blocks.ledger import Change, Ledger, LLMCall
from tasks.routing_skill import ChangeOutcomes

STEP = "implement"


class AttemptRow(NamedTuple):
    """One attempt of a finished change, with its outcome derived from the change's status."""

    change_id: int
    repo: str
    attempt: int
    model: str
    cost_usd: float
    passed: bool
    completed: bool


def attempt_history(
    ledger: Ledger, step: str = STEP, routes: Sequence[str] | None = None
) -> list[AttemptRow]:
    """Every attempt of every finished change, in order, by one SQL query over Change and LLMCall.

    An attempt is the calls of one (change, step, attempt); it passed when its change was accepted
    and it is the change's last attempt at ``step`` — every earlier attempt of a change failed.
    """
    last = (
        select(LLMCall.change_id, func.max(LLMCall.attempt).label("last"))
        .where(LLMCall.step == step)
        .group_by(LLMCall.change_id)  # type: ignore[arg-type]
        .subquery()
    )
    passed = case((and_(Change.status == "accepted", LLMCall.attempt == last.c.last), 1), else_=0)
    query = (
        select(
            Change.id,
            Change.repo,
            LLMCall.attempt,
            func.max(LLMCall.model),
            func.sum(LLMCall.cost_usd),
            func.max(passed),
            func.min(LLMCall.ok),
        )
        .join(LLMCall, LLMCall.change_id == Change.id)  # type: ignore[arg-type]
        .join(last, last.c.change_id == Change.id)  # type: ignore[arg-type]
        .where(LLMCall.step == step, Change.status != "running")
        .group_by(Change.id, Change.repo, LLMCall.attempt)  # type: ignore[arg-type]
        .order_by(Change.id, LLMCall.attempt)  # type: ignore[arg-type]
    )
    if routes is not None:
        query = query.where(Change.route.in_(list(routes)))  # type: ignore[attr-defined]
    with ledger.session() as session:
        rows = session.exec(query).all()
    return [
        AttemptRow(int(c), r, int(a), m, float(cost), bool(p), bool(ok))
        for c, r, a, m, cost, p, ok in rows
    ]


@dataclass
class ModelCosts:
    """What one model's recorded attempts cost, passed and failed apart."""

    passes: int = 0
    fails: int = 0
    pass_usd: float = 0.0
    fail_usd: float = 0.0
    max_pass_usd: float = 0.0
    max_stopped_usd: float = 0.0
    first_attempts: int = 0
    stopped_first: int = 0

    def add(self, row: AttemptRow) -> None:
        if row.attempt == 1:
            self.first_attempts += 1
            self.stopped_first += not row.completed
        if not row.completed:
            self.max_stopped_usd = max(self.max_stopped_usd, row.cost_usd)
        if row.passed:
            self.passes += 1
            self.pass_usd += row.cost_usd
            self.max_pass_usd = max(self.max_pass_usd, row.cost_usd)
        else:
            self.fails += 1
            self.fail_usd += row.cost_usd

    def expected_usd(self, chance: float, prior_usd: float | None) -> float:
        """Expected cost of an attempt that passes with ``chance`` (failures run longer)."""
        if self.passes and self.fails:
            return chance * self.pass_usd / self.passes + (1 - chance) * self.fail_usd / self.fails
        n = self.passes + self.fails + (prior_usd is not None)
        return (self.pass_usd + self.fail_usd + (prior_usd or 0.0)) / n


def outcomes(rows: Sequence[AttemptRow]) -> list[ChangeOutcomes]:
    by_change: dict[int, list[AttemptRow]] = defaultdict(list)
    for row in rows:
        by_change[row.change_id].append(row)
    return [
        ChangeOutcomes(repo=group[0].repo, attempts=tuple((r.model, r.passed) for r in group))
        for group in by_change.values()
    ]
