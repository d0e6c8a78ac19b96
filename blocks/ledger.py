"""The cost ledger: SQLModel tables `Change` and `LLMCall`, and the `Ledger` block that opens them.

Every figure mergemeter shows is a query over these rows; nothing is counted in memory.
SQLite file by default, any SQLAlchemy URL (e.g. PostgreSQL) by configuration.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache

from prefect.blocks.core import Block
from pydantic import BaseModel, Field
from sqlalchemy import Engine, UniqueConstraint, case, func, text
from sqlmodel import Field as Column
from sqlmodel import Session, SQLModel, create_engine, select

from mergemeter.settings import data_dir

LEDGER_URL_ENV = "MERGEMETER_LEDGER_URL"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Change(SQLModel, table=True):
    """One attempt to resolve one issue (or one unit of a decomposed issue) into one pull request."""

    __table_args__ = (UniqueConstraint("flow_run_id", "unit"),)

    id: int | None = Column(default=None, primary_key=True)
    repo: str = Column(index=True)
    issue: int
    title: str = ""
    template: str = "default"
    template_hash: str = ""
    route: str = Column(index=True)
    flow_run_id: str | None = Column(default=None, index=True)
    unit: int = 0
    base_sha: str = ""
    status: str = "running"  # running / accepted / rejected / abandoned-*
    reason: str = ""
    pr: int | None = None
    merged_sha: str | None = None
    lines_added: int = 0
    lines_removed: int = 0
    attempts: int = 0
    started_at: datetime = Column(default_factory=utcnow)
    finished_at: datetime | None = None


class LLMCall(SQLModel, table=True):
    """One model call, written before its answer is used."""

    __table_args__ = (UniqueConstraint("change_id", "step", "attempt", "call_index"),)

    id: int | None = Column(default=None, primary_key=True)
    change_id: int = Column(foreign_key="change.id", index=True)
    step: str
    attempt: int
    call_index: int = 0
    role: str
    model: str
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    # Worst-case spend held while a call is in flight; a crash mid-call leaves it counted.
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    price_source: str = ""
    # What was asked and answered: a retried step asking the same again reuses the answer.
    prompt_hash: str = Column(default="", index=True)
    answer: str = ""
    latency_ms: int = 0
    ok: bool = True
    error: str = ""
    flow_run_id: str | None = None
    task_run_id: str | None = None
    at: datetime = Column(default_factory=utcnow)


class CostItem(SQLModel, table=True):
    """Spend that is not tokens: test compute, human review, and the like."""

    __tablename__ = "cost_item"
    id: int | None = Column(default=None, primary_key=True)
    key: str = Column(unique=True)  # makes recording idempotent (a retried step records once)
    change_id: int | None = Column(default=None, foreign_key="change.id", index=True)
    kind: str  # compute / review
    quantity: float
    unit: str
    amount_usd: float
    note: str = ""
    at: datetime = Column(default_factory=utcnow)


class ChangeTotals(BaseModel):
    """What one change has spent so far."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    replay_priced: bool


class RouteSummary(BaseModel):
    """Cost per accepted change for one group of changes (all failed attempts included)."""

    group: str
    changes: int
    accepted: int
    total_cost_usd: float
    tokens: int

    @property
    def cost_per_accepted_change(self) -> float | None:
        return self.total_cost_usd / self.accepted if self.accepted else None


@cache
def _engine(url: str) -> Engine:
    connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
    engine = create_engine(url, connect_args=connect_args)
    tables = [Change.__table__, LLMCall.__table__, CostItem.__table__]  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(engine, tables=tables)
    return engine


class Ledger(Block):
    """Where every change and every model call is recorded.

    Examples:
        Load the saved ledger and read cost per accepted change by route:
        ```python
        from blocks.ledger import Ledger

        ledger = Ledger.load("BLOCK_NAME")
        for row in ledger.summary():
            print(row.group, row.cost_per_accepted_change)
        ```
    """

    _block_type_name = "Cost Ledger"
    _description = "SQLModel tables of changes and LLM calls; the source of every cost figure."

    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the ledger database. Empty: $MERGEMETER_LEDGER_URL, else a SQLite "
            "file ledger.db in the mergemeter data folder."
        ),
    )

    @property
    def url(self) -> str:
        if self.database_url:
            return self.database_url
        if os.environ.get(LEDGER_URL_ENV):
            return os.environ[LEDGER_URL_ENV]
        folder = data_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'ledger.db'}"

    def session(self) -> Session:
        return Session(_engine(self.url))

    # -- writing --------------------------------------------------------------------------------
    def start_change(
        self,
        repo: str,
        issue: int,
        title: str,
        route: str,
        flow_run_id: str | None,
        template: str,
        base_sha: str,
        template_hash: str = "",
        unit: int = 0,
    ) -> Change:
        """Open a change; a flow run that is retried gets back the change (and base) it opened."""
        with self.session() as session:
            if flow_run_id:
                # The first unit of a decomposed issue reuses the change opened before planning.
                units = [0, 1] if unit in (0, 1) else [unit]
                existing = session.exec(
                    select(Change).where(Change.flow_run_id == flow_run_id, Change.unit.in_(units))  # type: ignore[attr-defined]
                ).first()
                if existing is not None:
                    return existing
            row = Change(
                repo=repo,
                issue=issue,
                title=title,
                route=route,
                flow_run_id=flow_run_id,
                template=template,
                template_hash=template_hash,
                base_sha=base_sha,
                unit=unit,
            )
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    @contextmanager
    def write_lock(self) -> Iterator[Session]:
        """A session in which check-then-write is atomic across processes.

        SQLite: an exclusive lock file beside the database. Other databases: a transaction-scoped
        advisory lock (PostgreSQL), so concurrent workers cannot both spend the last dollar.
        """
        url = self.url
        if url.startswith("sqlite:///"):
            lock_path = url.removeprefix("sqlite:///") + ".lock"
            with open(lock_path, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    with self.session() as session:
                        yield session
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        with self.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.exec(text("SELECT pg_advisory_xact_lock(7316)"))  # type: ignore[call-overload]
            yield session

    @staticmethod
    def _next_index(session: Session, call: LLMCall) -> int:
        taken = session.exec(
            select(func.count())
            .select_from(LLMCall)
            .where(
                LLMCall.change_id == call.change_id,
                LLMCall.step == call.step,
                LLMCall.attempt == call.attempt,
            )
        ).one()
        return int(taken)

    def record_call(
        self, call: LLMCall, before_insert: Callable[[Session], None] | None = None
    ) -> LLMCall:
        """Commit one call row (the next free index for its change, step and attempt).

        ``before_insert`` runs under the write lock first — the budget check — and may raise to
        refuse the call; nothing is written then.
        """
        with self.write_lock() as session:
            if before_insert is not None:
                before_insert(session)
            call.call_index = self._next_index(session, call)
            session.add(call)
            session.commit()
            session.refresh(call)
            return call

    def answered(self, change_id: int, step: str, attempt: int, prompt_hash: str) -> str | None:
        """The answer of a settled call of this change that asked exactly this, if there is one."""
        with self.session() as session:
            row = session.exec(
                select(LLMCall).where(
                    LLMCall.change_id == change_id,
                    LLMCall.step == step,
                    LLMCall.attempt == attempt,
                    LLMCall.prompt_hash == prompt_hash,
                    LLMCall.ok == True,  # noqa: E712 - SQL comparison
                )
            ).first()
            return row.answer if row is not None else None

    def update_call(self, call: LLMCall) -> LLMCall:
        """Write the outcome of a call recorded earlier (its reservation is released)."""
        with self.session() as session:
            merged = session.merge(call)
            session.commit()
            session.refresh(merged)
            return merged

    def record_cost_item(self, item: CostItem) -> None:
        """Record non-token spend once per key (a retried step does not record it twice)."""
        with self.session() as session:
            if session.exec(select(CostItem).where(CostItem.key == item.key)).first() is None:
                session.add(item)
                session.commit()

    def record_compute(
        self, change_id: int, key: str, seconds: float, usd_per_second: float
    ) -> None:
        """Test/CI compute time of a change, priced at ``usd_per_second``."""
        self.record_cost_item(
            CostItem(
                key=f"{change_id}/{key}",
                change_id=change_id,
                kind="compute",
                quantity=seconds,
                unit="s",
                amount_usd=seconds * usd_per_second,
                note=key,
            )
        )

    def cost_items(self, change_id: int | None = None) -> list[CostItem]:
        with self.session() as session:
            query = select(CostItem).order_by(CostItem.id)  # type: ignore[arg-type]
            if change_id is not None:
                query = query.where(CostItem.change_id == change_id)
            return list(session.exec(query))

    def update_change(self, change_id: int, **fields: object) -> None:
        with self.session() as session:
            row = session.get(Change, change_id)
            if row is None:
                raise KeyError(f"no change {change_id} in the ledger")
            for name, value in fields.items():
                setattr(row, name, value)
            session.add(row)
            session.commit()

    def finish_change(
        self, change_id: int, status: str, reason: str = "", **fields: object
    ) -> None:
        self.update_change(change_id, status=status, reason=reason, finished_at=utcnow(), **fields)

    # -- reading ----------------------------------------------------------------------------------
    def change(self, change_id: int) -> Change:
        with self.session() as session:
            row = session.get(Change, change_id)
            if row is None:
                raise KeyError(f"no change {change_id} in the ledger")
            return row

    def changes(self, ids: list[int] | None = None) -> list[Change]:
        with self.session() as session:
            query = select(Change).order_by(Change.id)  # type: ignore[arg-type]
            if ids is not None:
                query = query.where(Change.id.in_(ids))  # type: ignore[union-attr]
            return list(session.exec(query))

    def calls(self, change_id: int | None = None) -> list[LLMCall]:
        with self.session() as session:
            query = select(LLMCall).order_by(LLMCall.id)  # type: ignore[arg-type]
            if change_id is not None:
                query = query.where(LLMCall.change_id == change_id)
            return list(session.exec(query))

    def totals(self, change_ids: list[int] | None = None) -> ChangeTotals:
        """Sums over the calls of the given changes (all changes when None)."""
        with self.session() as session:
            query = select(
                func.count(LLMCall.id),
                func.coalesce(func.sum(LLMCall.prompt_tokens), 0),
                func.coalesce(func.sum(LLMCall.completion_tokens), 0),
                func.coalesce(func.sum(LLMCall.cost_usd), 0.0),
                func.coalesce(
                    func.max(case((LLMCall.price_source.like("replay%"), 1), else_=0)), 0
                ),  # type: ignore[attr-defined]
            )
            if change_ids is not None:
                query = query.where(LLMCall.change_id.in_(change_ids))  # type: ignore[attr-defined]
            calls, prompt, completion, cost, replay = session.exec(query).one()
        return ChangeTotals(
            calls=calls,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=float(cost),
            replay_priced=bool(replay),
        )

    def summary(self, change_ids: list[int] | None = None, by: str = "route") -> list[RouteSummary]:
        """Cost per accepted change grouped by ``by`` (route, template or repo), failures included."""
        group = {"route": Change.route, "template": Change.template, "repo": Change.repo}[by]
        with self.session() as session:
            spent = (
                select(
                    LLMCall.change_id,
                    func.sum(LLMCall.cost_usd).label("cost"),
                    func.sum(LLMCall.prompt_tokens + LLMCall.completion_tokens).label("tokens"),
                )
                .group_by(LLMCall.change_id)  # type: ignore[arg-type]
                .subquery()
            )
            query = (
                select(
                    group,
                    func.count(Change.id),
                    func.sum(case((Change.status == "accepted", 1), else_=0)),
                    func.coalesce(func.sum(spent.c.cost), 0.0),
                    func.coalesce(func.sum(spent.c.tokens), 0),
                )
                .outerjoin(spent, spent.c.change_id == Change.id)
                .group_by(group)
                .order_by(group)
            )
            if change_ids is not None:
                query = query.where(Change.id.in_(change_ids))  # type: ignore[union-attr]
            rows = session.exec(query).all()
        return [
            RouteSummary(
                group=g, changes=n, accepted=int(a), total_cost_usd=float(c), tokens=int(t)
            )
            for g, n, a, c, t in rows
        ]
