"""Budget: hard caps on spend, checked before every model call against its worst case.

A call is sent only if, for every cap, what was already spent (settled calls, calls still in
flight at their worst case, and recorded non-token spend) plus this call's worst case — prompt
tokens counted with litellm's counter plus ``max_tokens`` at the output price — stays within the
cap. litellm's own ``max_budget`` does not accumulate, so the ledger is the only source.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from prefect.blocks.core import Block
from pydantic import Field
from sqlalchemy import ColumnElement, func
from sqlmodel import Session, select

from blocks.ledger import Change, CostItem, LLMCall


class BudgetExceeded(RuntimeError):
    """The next call could cross a cap, so it was not sent."""

    def __init__(self, scope: str, unit: str, cap: float, spent: float, worst: float) -> None:
        fmt = (lambda v: f"${v:.4f}") if unit == "usd" else (lambda v: f"{int(v):,} tokens")
        super().__init__(
            f"{scope} budget {fmt(cap)}: spent {fmt(spent)}, next call could cost {fmt(worst)}"
        )
        self.scope, self.unit, self.cap, self.spent, self.worst = scope, unit, cap, spent, worst


class Budget(Block):
    """Caps per change, per issue, per route per day and for the whole fleet per day.

    Examples:
        Load a saved budget and pass it to resolve_issue:
        ```python
        from blocks.budget import Budget

        budget = Budget.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "Spend Budget"
    _description = "Hard USD and token caps, enforced before each model call."

    per_change_usd: float | None = Field(default=None, ge=0, description="USD cap for one change.")
    per_change_tokens: int | None = Field(
        default=None, ge=0, description="Token cap for one change."
    )
    per_issue_usd: float | None = Field(
        default=None, ge=0, description="USD cap over all changes of one issue."
    )
    per_issue_tokens: int | None = Field(
        default=None, ge=0, description="Token cap over all changes of one issue."
    )
    per_route_day_usd: float | None = Field(
        default=None, ge=0, description="USD cap per route per UTC day."
    )
    per_route_day_tokens: int | None = Field(
        default=None, ge=0, description="Token cap per route per UTC day."
    )
    fleet_day_usd: float | None = Field(
        default=None, ge=0, description="USD cap per UTC day, all routes."
    )
    fleet_day_tokens: int | None = Field(
        default=None, ge=0, description="Token cap per UTC day, all routes."
    )

    alert_change_usd: float | None = Field(
        default=None,
        ge=0,
        description="Emit a mergemeter.change.costly event when a change's cost goes over this.",
    )

    def check(
        self, session: Session, change: Change, worst_usd: float, worst_tokens: int, now: datetime
    ) -> None:
        """Raise BudgetExceeded if a call of this worst case could cross any cap."""
        day_start = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
        scopes: list[tuple[str, float | None, int | None, list[ColumnElement[bool]]]] = [
            ("change", self.per_change_usd, self.per_change_tokens, [Change.id == change.id]),
            (
                "issue",
                self.per_issue_usd,
                self.per_issue_tokens,
                [Change.repo == change.repo, Change.issue == change.issue],
            ),
            (
                f"route {change.route} today",
                self.per_route_day_usd,
                self.per_route_day_tokens,
                [Change.route == change.route, LLMCall.at >= day_start],  # type: ignore[list-item]
            ),
            ("fleet today", self.fleet_day_usd, self.fleet_day_tokens, [LLMCall.at >= day_start]),  # type: ignore[list-item]
        ]
        for scope, cap_usd, cap_tokens, where in scopes:
            if cap_usd is None and cap_tokens is None:
                continue
            spent_usd, spent_tokens = spend(session, where)
            if scope in ("change", "issue"):
                spent_usd += other_spend(session, where)
            if cap_usd is not None and spent_usd + worst_usd > cap_usd:
                raise BudgetExceeded(scope, "usd", cap_usd, spent_usd, worst_usd)
            if cap_tokens is not None and spent_tokens + worst_tokens > cap_tokens:
                raise BudgetExceeded(scope, "tokens", cap_tokens, spent_tokens, worst_tokens)


def spend(session: Session, where: list[ColumnElement[bool]]) -> tuple[float, int]:
    """Model spend (settled plus in-flight reservations) of the calls matching ``where``."""
    usd, tokens = session.exec(
        select(
            func.coalesce(func.sum(LLMCall.cost_usd + LLMCall.reserved_usd), 0.0),
            func.coalesce(
                func.sum(
                    LLMCall.prompt_tokens + LLMCall.completion_tokens + LLMCall.reserved_tokens
                ),
                0,
            ),
        )
        .select_from(LLMCall)
        .join(Change, Change.id == LLMCall.change_id)  # type: ignore[arg-type]
        .where(*where)
    ).one()
    return float(usd), int(tokens)


def other_spend(session: Session, where: list[ColumnElement[bool]]) -> float:
    """Non-token spend (test compute, review time) of the changes matching ``where``."""
    usd = session.exec(
        select(func.coalesce(func.sum(CostItem.amount_usd), 0.0))
        .select_from(CostItem)
        .join(Change, Change.id == CostItem.change_id)  # type: ignore[arg-type]
        .where(*where)
    ).one()
    return float(usd)
