"""Route modes: which candidate model attempts a change next, with what cost limit, and when to stop.

A route mode is a pydantic-configured policy over candidate models (see `route_mode`):

- ``single``: one model, one attempt.
- ``cascade``: a fixed ordered list, tried in turn until one passes or the budget is spent.
- ``learned``: chooses, for each change, which candidates to try and in what order from what the
  ledger has recorded so far (per repository and overall), with a per-change budget.

Every mode is driven the same way, by `route_change`: the mode's router proposes the next attempt
(a model and a cost limit) knowing only the attempts this change has already paid for; an
`AttemptRunner` carries it out and reports whether it passed validation and what it cost; and the
change and one `LLMCall` row per attempt (step ``implement``, attempt k) land in the ledger. The
ledger is all the learned mode reads (`tasks.routing_history`, one SQL query): an attempt passed
when its change was accepted and it was the change's last attempt. The per-change budget is a hard
cap: an attempt may spend at most what is left of it, and an attempt stopped at its cost limit
failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, Field, PrivateAttr, TypeAdapter, ValidationError

from blocks.ledger import Change, Ledger, LLMCall, utcnow
from tasks.routing_history import STEP, ModelCosts, attempt_history, outcomes
from tasks.routing_skill import SkillModel

COLD_FIT_ITERATIONS = 30


# -- what flows between a router, a runner and the ledger ---------------------------------------
class Issue(BaseModel):
    """The issue a change resolves, as the ledger names it."""

    repo: str = Field(description="Repository (the issue kind the learned mode keeps stats for).")
    number: int = Field(description="Issue number in its repository.")
    title: str = Field(default="", description="Issue title, for the ledger and run names.")


class NextAttempt(BaseModel):
    """A router's proposal: run ``model`` once, spending at most ``cost_limit_usd``."""

    model: str
    cost_limit_usd: float | None = Field(description="Stop the attempt here; None: no limit.")
    why: str = Field(default="", description="The figures behind the choice, for run artifacts.")


class AttemptTokens(BaseModel):
    """The size of a typical attempt, for price priors from litellm's price map."""

    prompt: int = Field(gt=0, description="Prompt tokens of one attempt (all its calls).")
    completion: int = Field(gt=0, description="Completion tokens of one attempt (all its calls).")


class AttemptOutcome(BaseModel):
    """What an attempt turned out to be, known only once it has been paid for."""

    passed: bool
    cost_usd: float
    stopped_at_limit: bool = False


class Attempt(BaseModel):
    """One attempt of the current change: the model and its paid-for outcome."""

    model: str
    outcome: AttemptOutcome


class AttemptRunner(Protocol):
    """Runs one attempt (the implement → test loop of the pipeline, or a recorded outcome)."""

    price_source: str

    def attempt(self, issue: Issue, model: str, cost_limit_usd: float | None) -> AttemptOutcome:
        """Run ``model`` on ``issue``; an attempt reaching ``cost_limit_usd`` stops and fails."""
        ...


class ChangeRouter(Protocol):
    """The per-change half of a route mode."""

    def next_attempt(self, attempts: Sequence[Attempt]) -> NextAttempt | None:
        """The next attempt given the (failed) attempts so far, or None to stop."""
        ...


def spent(attempts: Sequence[Attempt]) -> float:
    return sum(a.outcome.cost_usd for a in attempts)


def _remaining(budget_usd: float | None, attempts: Sequence[Attempt]) -> float | None:
    return None if budget_usd is None else budget_usd - spent(attempts)


# -- the fixed modes --------------------------------------------------------------------------
class SingleModelMode(BaseModel):
    """One model, one attempt per change."""

    mode: Literal["single"] = "single"
    model: str = Field(description="The model that attempts every change.")
    budget_usd: float | None = Field(
        default=None, description="Cost limit of the attempt; None: no limit."
    )

    @property
    def name(self) -> str:
        return f"single:{self.model}"

    def router(self, ledger: Ledger, issue: Issue) -> ChangeRouter:
        return _CascadeRouter([self.model], self.budget_usd)


class CascadeMode(BaseModel):
    """A fixed ordered list of models, tried in turn until one passes or the budget is spent."""

    mode: Literal["cascade"] = "cascade"
    models: list[str] = Field(min_length=1, description="Models in the order they are tried.")
    budget_usd: float | None = Field(
        default=3.0, description="Per-change budget; no attempt starts once it is spent."
    )

    @property
    def name(self) -> str:
        return "cascade:" + " > ".join(self.models)

    def router(self, ledger: Ledger, issue: Issue) -> ChangeRouter:
        return _CascadeRouter(self.models, self.budget_usd)


@dataclass
class _CascadeRouter:
    models: list[str]
    budget_usd: float | None

    def next_attempt(self, attempts: Sequence[Attempt]) -> NextAttempt | None:
        remaining = _remaining(self.budget_usd, attempts)
        if len(attempts) >= len(self.models) or (remaining is not None and remaining <= 0):
            return None
        return NextAttempt(
            model=self.models[len(attempts)],
            cost_limit_usd=remaining,
            why=f"cascade position {len(attempts) + 1}",
        )


# -- the learned mode -------------------------------------------------------------------------
class LearnedMode(BaseModel):
    """Learns from the ledger which candidates to try on a change, in what order, and when to stop.

    Exploration: a change's first attempt is a *trial*, capped at ``trial_cost_limit_usd``, while
    some candidate whose cost nobody knows (no price prior: none in ``price_prior_usd``, nor from
    litellm's price map through ``attempt_tokens``) has no recorded attempt, or has had fewer than
    ``trials`` first attempts none of which reached that cap (a model that reached it is too
    costly to explore further). A model with a price prior gets no trial: its expected cost is
    known before any attempt and its chance of passing starts from the skill model's prior, so it
    is tried when it is the cheapest per expected success.

    Exploitation: every candidate not yet tried on this change gets a chance of passing from a
    skill model fitted to the ledger (`tasks.routing_skill`: per model, per repository, and
    lowered by this change's failed attempts) and an expected cost (its recorded passing and
    failing attempts, or its price prior); the one with the lowest expected cost per success goes
    next, provided its chance × ``value_usd`` covers its expected cost and that cost fits the
    budget left. Its cost limit is ``pass_cost_margin`` × the costliest passing attempt of it seen
    (at least the trial cap), never more than the budget left.
    """

    mode: Literal["learned"] = "learned"
    candidates: list[str] = Field(
        min_length=1, description="Models it may use; unseen ones get trials in this order."
    )
    budget_usd: float = Field(default=3.0, gt=0, description="Hard per-change spending cap.")
    value_usd: float | None = Field(
        default=None,
        description=(
            "What one accepted change is worth: an attempt is made only if its chance of passing "
            "× this covers its expected cost. None: the per-change budget."
        ),
    )
    max_attempts: int = Field(default=5, ge=1, description="Most attempts per change.")
    trial_cost_limit_usd: float = Field(
        default=0.25, gt=0, description="Cost limit of a trial (a first attempt to learn from)."
    )
    trials: int = Field(
        default=8,
        ge=1,
        description=(
            "Trials per model without a price prior: first attempts it gets to learn from, "
            "while none of them reached the trial cost limit (a model that did is too costly to "
            "explore further)."
        ),
    )
    pass_cost_margin: float = Field(
        default=2.0,
        gt=0,
        description="An attempt stops at this multiple of the costliest passing attempt seen.",
    )
    price_prior_usd: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Expected cost of one attempt per model known before any is recorded (e.g. from "
            "litellm's price map, see `litellm_price_prior`); such a model needs no trial."
        ),
    )
    attempt_tokens: AttemptTokens | None = Field(
        default=None,
        description=(
            "The size of a typical attempt; with it, every candidate litellm's price map prices "
            "and ``price_prior_usd`` leaves out gets a price prior from that map."
        ),
    )
    learn_from_routes: list[str] | None = Field(
        default=None, description="Only these routes' changes teach it; None: every route."
    )
    label: str = Field(default="learned", description="Route name in the ledger and reports.")
    _fits: dict[str, SkillModel] = PrivateAttr(default_factory=dict)
    _priors: dict[str, float] | None = PrivateAttr(default=None)

    def priors(self) -> dict[str, float]:
        """Expected cost of one attempt per model known before any attempt is recorded."""
        if self._priors is None:
            priced: dict[str, float] = {}
            unpriced = [m for m in self.candidates if m not in self.price_prior_usd]
            if self.attempt_tokens is not None and unpriced:
                tokens = self.attempt_tokens
                priced = litellm_price_prior(unpriced, tokens.prompt, tokens.completion)
            self._priors = {**priced, **self.price_prior_usd}
        return self._priors

    @property
    def name(self) -> str:
        return self.label

    def router(self, ledger: Ledger, issue: Issue) -> ChangeRouter:
        """Read the ledger (one query), refit the skill model, and route one change."""
        rows = [
            r
            for r in attempt_history(ledger, routes=self.learn_from_routes)
            if r.model in self.candidates
        ]
        costs: dict[str, ModelCosts] = defaultdict(ModelCosts)
        for row in rows:
            costs[row.model].add(row)
        skills = self._fits.get(ledger.url)
        iterations = 1 if skills is not None else COLD_FIT_ITERATIONS
        skills = skills or SkillModel()
        if rows:
            skills.refit(outcomes(rows), iterations=iterations)
        self._fits[ledger.url] = skills
        return LearnedRouter(
            mode=self, issue=issue, skills=skills, costs=dict(costs), prior=self.priors()
        )


@dataclass
class LearnedRouter:
    """The learned mode's beliefs at the start of one change, and its per-attempt choice."""

    mode: LearnedMode
    issue: Issue
    skills: SkillModel
    costs: dict[str, ModelCosts] = field(default_factory=dict)
    prior: dict[str, float] = field(default_factory=dict)

    def known(self, model: str) -> bool:
        return model in self.costs or model in self.prior

    def next_attempt(self, attempts: Sequence[Attempt]) -> NextAttempt | None:
        remaining = self.mode.budget_usd - spent(attempts)
        if len(attempts) >= self.mode.max_attempts or remaining <= 0:
            return None
        tried = [a.model for a in attempts]
        if not attempts and (trial := self._trial()) is not None:
            limit = min(self.mode.trial_cost_limit_usd, remaining)
            return NextAttempt(model=trial[0], cost_limit_usd=limit, why=trial[1])
        options = [
            option
            for m in self.mode.candidates
            if m not in tried and self.known(m)
            if (option := self._option(m, tried, remaining)) is not None
        ]
        if not options:
            return None
        return min(options, key=lambda o: o[0])[1]

    def _trial(self) -> tuple[str, str] | None:
        """The model to learn about on this change's first attempt, if any still needs it."""
        unseen = [m for m in self.mode.candidates if not self.known(m)]
        if unseen:
            return unseen[0], "trial: no recorded attempt yet"
        costs = self.costs
        exploring = [
            m
            for m in self.mode.candidates
            if m in costs
            and m not in self.prior
            and not costs[m].stopped_first
            and costs[m].first_attempts < self.mode.trials
        ]
        if not exploring:
            return None
        model = min(exploring, key=lambda m: costs[m].first_attempts)
        return model, f"trial {costs[model].first_attempts + 1} of {self.mode.trials}"

    def _option(
        self, model: str, failed: Sequence[str], remaining: float
    ) -> tuple[float, NextAttempt] | None:
        chance = self.skills.chance(model, self.issue.repo, failed)
        costs = self.costs.get(model, ModelCosts())
        expected = costs.expected_usd(chance, self.prior.get(model))
        value = self.mode.value_usd if self.mode.value_usd is not None else self.mode.budget_usd
        if expected > remaining or chance * value < expected or chance <= 0:
            return None
        cap = self._cost_limit(costs)
        per_success = expected / chance
        why = (
            f"{chance:.0%} chance after {len(failed)} failed attempt(s), expected "
            f"${expected:.3f}, ${per_success:.2f} per success"
        )
        return per_success, NextAttempt(model=model, cost_limit_usd=min(cap, remaining), why=why)

    def _cost_limit(self, costs: ModelCosts) -> float:
        """Where this model's attempt stops: a margin over its costliest pass; until it has
        passed, twice the most it was ever stopped at (so a model costlier than the trial cap
        can still show what it can do, if the budget and its chance allow)."""
        if costs.passes:
            return max(
                self.mode.trial_cost_limit_usd, self.mode.pass_cost_margin * costs.max_pass_usd
            )
        return max(self.mode.trial_cost_limit_usd, 2 * costs.max_stopped_usd)


# -- modes by name, and the driver -------------------------------------------------------------
RouteMode = Annotated[SingleModelMode | CascadeMode | LearnedMode, Field(discriminator="mode")]
ROUTE_MODES: dict[str, type[BaseModel]] = {
    "single": SingleModelMode,
    "cascade": CascadeMode,
    "learned": LearnedMode,
}


class UnknownRouteMode(ValueError):
    """The configuration names no route mode this module has."""


def route_mode(config: dict[str, object]) -> SingleModelMode | CascadeMode | LearnedMode:
    """Validate a route-mode configuration such as ``{"mode": "learned", "candidates": [...]}``."""
    name = config.get("mode")
    if name not in ROUTE_MODES:
        raise UnknownRouteMode(f"unknown route mode {name!r}; modes: {sorted(ROUTE_MODES)}")
    try:
        return TypeAdapter(RouteMode).validate_python(config)
    except ValidationError as exc:
        raise UnknownRouteMode(f"invalid {name} route mode: {exc}") from exc


def route_change(
    mode: SingleModelMode | CascadeMode | LearnedMode,
    ledger: Ledger,
    runner: AttemptRunner,
    issue: Issue,
    template: str = "routing",
) -> Change:
    """Resolve one issue with ``mode``: attempt until one passes or the router stops, then record."""
    router = mode.router(ledger, issue)
    attempts: list[Attempt] = []
    while (choice := router.next_attempt(attempts)) is not None:
        outcome = runner.attempt(issue, choice.model, choice.cost_limit_usd)
        attempts.append(Attempt(model=choice.model, outcome=outcome))
        if outcome.passed:
            break
    return record_change(ledger, mode.name, issue, attempts, runner.price_source, template)


def _status(attempts: Sequence[Attempt]) -> tuple[str, str]:
    if not attempts:
        return "abandoned-budget", "no candidate was worth its expected cost within the budget"
    if attempts[-1].outcome.passed:
        return "accepted", f"attempt {len(attempts)} passed validation"
    if attempts[-1].outcome.stopped_at_limit:
        return "abandoned-budget", "the last attempt reached its cost limit"
    return "rejected", f"{len(attempts)} attempt(s) failed validation; the router stopped"


def record_change(
    ledger: Ledger,
    route: str,
    issue: Issue,
    attempts: Sequence[Attempt],
    price_source: str,
    template: str = "routing",
) -> Change:
    """Write one finished change and its attempts (one LLMCall row each) in one transaction."""
    status, reason = _status(attempts)
    with ledger.session() as session:
        change = Change(
            repo=issue.repo,
            issue=issue.number,
            title=issue.title,
            template=template,
            route=route,
            status=status,
            reason=reason,
            attempts=len(attempts),
            finished_at=utcnow(),
        )
        session.add(change)
        session.flush()
        for k, attempt in enumerate(attempts, start=1):
            stopped = attempt.outcome.stopped_at_limit
            session.add(
                LLMCall(
                    change_id=change.id,  # type: ignore[arg-type]
                    step=STEP,
                    attempt=k,
                    role="coder",
                    model=attempt.model,
                    cost_usd=attempt.outcome.cost_usd,
                    price_source=price_source,
                    ok=not stopped,
                    error="stopped at the attempt's cost limit" if stopped else "",
                )
            )
        session.commit()
        session.refresh(change)
        return change


def litellm_price_prior(
    models: Sequence[str], prompt_tokens: int, completion_tokens: int
) -> dict[str, float]:
    """Expected cost of an attempt of ``prompt_tokens`` in and ``completion_tokens`` out, per model.

    From litellm's bundled price map, for ``LearnedMode.price_prior_usd``; a model without a
    price is left out (it then gets a trial), never priced at zero.
    """
    from tasks.llm import _litellm

    prices = _litellm().model_cost
    prior: dict[str, float] = {}
    for model in models:
        info = prices.get(model) or {}
        inp, out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
        if inp and out:
            prior[model] = prompt_tokens * float(inp) + completion_tokens * float(out)
    return prior
