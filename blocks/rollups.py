"""Roll-ups: cost per accepted change and its companions, as SQL over the ledger.

Full cost of a group = model tokens (calls lost in flight count at their reserved worst case)
+ test compute + human review + self-hosted GPU time (busy time × rate) + its share of flat-rate
subscriptions, amortised over the window's accepted changes. Failed and abandoned changes count
in the cost; only merged ones count as accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import case, func, literal
from sqlmodel import select

from blocks.ledger import Change, CostItem, Ledger, LLMCall
from blocks.pricing import Pricing

GROUPINGS = ("route", "template", "repo", "model")
DAYS_PER_MONTH = 30.4375


class Rollup(BaseModel):
    """One row of a report."""

    group: str
    changes: int
    accepted: int
    rejected: int
    abandoned: int
    tokens: int
    tokens_usd: float
    compute_usd: float
    review_usd: float
    gpu_usd: float
    subscription_usd: float = 0.0
    wasted_usd: float = Field(description="Direct cost of changes that were not merged.")
    attempts_accepted: int = 0
    lines_accepted: int = 0
    days: float = 1.0

    @property
    def total_usd(self) -> float:
        return (
            self.tokens_usd
            + self.compute_usd
            + self.review_usd
            + self.gpu_usd
            + self.subscription_usd
        )

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.changes if self.changes else None

    @property
    def cost_per_accepted_change(self) -> float | None:
        return self.total_usd / self.accepted if self.accepted else None

    def per_accepted(self, value: float) -> float | None:
        return value / self.accepted if self.accepted else None

    def as_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "changes": self.changes,
            "accepted": self.accepted,
            "acceptance_rate": self.acceptance_rate,
            "total_usd": round(self.total_usd, 6),
            "cost_per_accepted_change": _round(self.cost_per_accepted_change),
            "tokens_usd": round(self.tokens_usd, 6),
            "compute_usd": round(self.compute_usd, 6),
            "review_usd": round(self.review_usd, 6),
            "gpu_usd": round(self.gpu_usd, 6),
            "subscription_usd": round(self.subscription_usd, 6),
            "wasted_usd": round(self.wasted_usd, 6),
            "tokens": self.tokens,
            "tokens_per_accepted_change": _round(self.per_accepted(self.tokens)),
            "attempts_per_accepted_change": _round(self.per_accepted(self.attempts_accepted)),
            "lines_per_accepted_change": _round(self.per_accepted(self.lines_accepted)),
            "accepted_per_day": round(self.accepted / self.days, 3),
            "rejected": self.rejected,
            "abandoned": self.abandoned,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def rollup(
    ledger: Ledger,
    pricing: Pricing | None = None,
    by: str = "route",
    since: datetime | None = None,
    until: datetime | None = None,
    change_ids: list[int] | None = None,
) -> tuple[list[Rollup], Rollup]:
    """Rows grouped ``by`` route, template, repo or model, and the overall row."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUPINGS)}")
    pricing = pricing or Pricing()
    until = until or datetime.now(UTC)
    groups = _query(ledger, pricing, by, since, until, change_ids)
    overall = _query(ledger, pricing, None, since, until, change_ids)
    total = overall[0] if overall else _empty("all")
    first = _first_start(ledger, since, change_ids)
    window_days = max((until - (since or first or until)).total_seconds() / 86400, 1.0)
    for row in [*groups, total]:
        row.days = window_days
    _amortise_subscriptions(
        ledger, pricing, groups, total, by, window_days, since, until, change_ids
    )
    return groups, total


def _empty(group: str) -> Rollup:
    return Rollup(
        group=group, changes=0, accepted=0, rejected=0, abandoned=0, tokens=0,
        tokens_usd=0, compute_usd=0, review_usd=0, gpu_usd=0, wasted_usd=0,
    )  # fmt: skip


def _filters(since: datetime | None, until: datetime, change_ids: list[int] | None) -> list:  # type: ignore[type-arg]
    where = [Change.started_at < until]
    if since is not None:
        where.append(Change.started_at >= since)
    if change_ids is not None:
        where.append(Change.id.in_(change_ids))  # type: ignore[union-attr]
    return where


def _query(
    ledger: Ledger,
    pricing: Pricing,
    by: str | None,
    since: datetime | None,
    until: datetime,
    change_ids: list[int] | None,
) -> list[Rollup]:
    gpu_rate = case(
        *[(LLMCall.model == m, rate / 3.6e6) for m, rate in pricing.gpu_usd_per_hour.items()], else_=0.0
    ) if pricing.gpu_usd_per_hour else literal(0.0)  # fmt: skip
    calls = select(
        LLMCall.change_id.label("change_id"),  # type: ignore[attr-defined]
        (LLMCall.model if by == "model" else literal("")).label("call_model"),
        func.sum(LLMCall.cost_usd + LLMCall.reserved_usd).label("usd"),
        func.sum(LLMCall.prompt_tokens + LLMCall.completion_tokens).label("tokens"),
        func.sum(LLMCall.latency_ms * gpu_rate).label("gpu"),
    ).group_by(LLMCall.change_id, "call_model")
    calls_q = calls.subquery()
    other = (
        select(
            CostItem.change_id.label("change_id"),  # type: ignore[union-attr]
            func.sum(case((CostItem.kind == "compute", CostItem.amount_usd), else_=0.0)).label(
                "compute"
            ),
            func.sum(case((CostItem.kind == "review", CostItem.amount_usd), else_=0.0)).label(
                "review"
            ),
        )
        .group_by(CostItem.change_id)
        .subquery()
    )
    if by == "model":
        group_col = calls_q.c.call_model
        compute = literal(0.0)  # compute and review belong to changes, not to one model
        review = literal(0.0)
    else:
        group_col = {None: literal("all"), "route": Change.route, "template": Change.template,
                     "repo": Change.repo}[by]  # fmt: skip
        compute, review = func.coalesce(other.c.compute, 0.0), func.coalesce(other.c.review, 0.0)
    accepted = Change.status == "accepted"
    direct = (
        func.coalesce(calls_q.c.usd, 0.0) + compute + review + func.coalesce(calls_q.c.gpu, 0.0)
    )
    query = (
        select(
            group_col.label("grp"),
            func.count(func.distinct(Change.id)),
            func.count(func.distinct(case((accepted, Change.id)))),
            func.count(func.distinct(case((Change.status == "rejected", Change.id)))),
            func.count(func.distinct(case((Change.status.like("abandoned%"), Change.id)))),  # type: ignore[attr-defined]
            func.coalesce(func.sum(calls_q.c.tokens), 0),
            func.coalesce(func.sum(calls_q.c.usd), 0.0),
            func.coalesce(func.sum(compute), 0.0),
            func.coalesce(func.sum(review), 0.0),
            func.coalesce(func.sum(calls_q.c.gpu), 0.0),
            func.coalesce(func.sum(case((~accepted, direct), else_=0.0)), 0.0),
            func.coalesce(func.sum(case((accepted, Change.attempts), else_=0)), 0),
            func.coalesce(
                func.sum(case((accepted, Change.lines_added + Change.lines_removed), else_=0)), 0
            ),
        )
        .select_from(Change)
        .outerjoin(calls_q, calls_q.c.change_id == Change.id)
        .outerjoin(other, other.c.change_id == Change.id)
        .where(*_filters(since, until, change_ids))
        .group_by("grp")
        .order_by("grp")
    )
    if by == "model":
        query = query.where(calls_q.c.call_model.is_not(None))
    with ledger.session() as session:
        rows = session.exec(query).all()  # type: ignore[call-overload]
    return [
        Rollup(
            group=str(g),
            changes=n,
            accepted=a,
            rejected=r,
            abandoned=ab,
            tokens=int(t),
            tokens_usd=float(usd),
            compute_usd=float(cu),
            review_usd=float(rv),
            gpu_usd=float(gpu),
            wasted_usd=float(w),
            attempts_accepted=int(att),
            lines_accepted=int(lines),
        )  # fmt: skip
        for g, n, a, r, ab, t, usd, cu, rv, gpu, w, att, lines in rows
        if n
    ]


def _first_start(
    ledger: Ledger, since: datetime | None, change_ids: list[int] | None
) -> datetime | None:
    with ledger.session() as session:
        query = select(func.min(Change.started_at))
        if change_ids is not None:
            query = query.where(Change.id.in_(change_ids))  # type: ignore[union-attr]
        first = session.exec(query).one()
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return first


def _amortise_subscriptions(
    ledger: Ledger,
    pricing: Pricing,
    groups: list[Rollup],
    total: Rollup,
    by: str,
    window_days: float,
    since: datetime | None,
    until: datetime,
    change_ids: list[int] | None,
) -> None:
    """Spread each plan's fee for the window over the accepted changes of the routes using it."""
    for plan in pricing.subscriptions:
        fee = plan.usd_per_month * window_days / DAYS_PER_MONTH
        where = [*_filters(since, until, change_ids), Change.status == "accepted"]
        if plan.routes is not None:
            where.append(Change.route.in_(plan.routes))  # type: ignore[attr-defined]
        column = {"route": Change.route, "template": Change.template, "repo": Change.repo}.get(by)
        with ledger.session() as session:
            if column is None:  # by model: a fee is not any one model's
                counts = {}
            else:
                counts = dict(
                    session.exec(select(column, func.count()).where(*where).group_by(column)).all()
                )  # type: ignore[call-overload]
            eligible = session.exec(select(func.count()).select_from(Change).where(*where)).one()
        total.subscription_usd += fee
        if not eligible:
            continue
        for row in groups:
            row.subscription_usd += fee * counts.get(row.group, 0) / eligible


def window_start(text: str | None) -> datetime | None:
    """`--since` values: an ISO date/time, or a span back from now like 7d, 12h, 30m."""
    if not text:
        return None
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text[-1] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
