"""The routing policy: which candidate model answers one LLM call, and what to try if it fails.

A route lists, for each role (planner, coder, reviewer), ordered candidates: a litellm model
string, an optional endpoint and key, a privacy tier (``hosted`` / ``self-hosted``), a strength
from 1 to 10 and a context window. For one call, `choose` returns the candidates to try, first
the primary, then the fallbacks for provider errors. The policy, in one place:

1. **Privacy first.** A sensitive repository only ever gets ``self-hosted`` candidates; a hosted
   one is never returned, so it is never in the Router and never receives a request.
2. **Not the author.** The reviewer never gets a model that coded the change (``exclude_models``)
   unless ``RoutePolicy.reviewer_may_equal_coder``.
3. **It must fit before it is sent.** A candidate whose context window (its ``context_window``,
   else litellm's ``max_input_tokens``) cannot hold ``prompt_tokens + max_tokens`` is skipped, so
   a long prompt goes to a larger-window candidate instead of failing at the provider; a candidate
   whose window is unknown is skipped too. When none fits, `blocks.context_fit.trim_to_fit` cuts
   the prompt.
4. **Strong enough.** Only candidates with ``strength ≥ required_strength`` qualify; an issue's
   labels set it (`required_strength_from_labels`: ``strength:N``, ``easy`` = 3, ``hard`` = 8).
5. **Cheapest first.** Qualifying candidates are ordered by the worst-case cost of this call,
   ``prompt_tokens × input price + max_tokens × output price`` (the figure the budget reserves),
   prices coming from the candidate's price override in force, else litellm's price map; an
   unknown price raises instead of counting as zero. Equal costs keep the route's order.
6. **Escalate after a failure.** With ``escalate_after_failure``, each failed attempt moves the
   floor above the strength of the candidate the previous attempt used: attempt 2 gets the cheapest
   candidate *stronger* than attempt 1's, attempt 3 one stronger still, and it stays with the
   strongest once there is none stronger. Fallbacks honour the same floor.
7. **Fall back on provider errors.** The metered call (`tasks/llm.py`) tries the primary, then
   up to ``max_fallbacks`` more: litellm's provider SDK retries rate limits, 5xx and timeouts
   ``num_retries`` times on the same candidate with backoff (a ``retry-after`` header is honoured),
   then the next candidate is called; bad credentials, a context-window error and an unknown model
   move to the next candidate without retrying the same one. Each request is its own ledger row.
   `blocks.litellm_router` builds the same chain as a litellm Router for callers that want one;
   the pipeline does not use it, because a Router hides fallback requests from the ledger and
   zeroes ``completion_cost`` for models missing from litellm's price map.
8. **Nothing fits:** `NoCandidate`, naming every candidate and why it was excluded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field, SecretStr, model_validator

from blocks.context_fit import TokenCounter, litellm_counter, trim_to_fit
from blocks.pricing import PriceOverride, TokenPrice, override_in_force, override_price

Tier = Literal["hosted", "self-hosted"]
REVIEWER = "reviewer"
STRENGTH_LABELS: Mapping[str, int] = {"easy": 3, "hard": 8}
NO_KEY = "no-key"  # sent to a self-hosted server without a key, so no provider env key leaks to it

PriceOf = Callable[["Candidate"], TokenPrice]
WindowOf = Callable[[str], "int | None"]


class NoCandidate(LookupError):
    """No candidate may answer this call; ``rejected`` maps each candidate to why not."""

    def __init__(self, message: str, role: str, rejected: Mapping[str, str]) -> None:
        super().__init__(message)
        self.role = role
        self.rejected = dict(rejected)


class Candidate(BaseModel):
    """One model that may play a role, with what the policy needs to know about it."""

    model: str = Field(description="litellm model string, e.g. openai/qwen3-coder or gpt-4o.")
    api_base: str | None = Field(
        default=None, description="Endpoint override, e.g. a self-hosted server's /v1 URL."
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Key for the endpoint; None uses the provider's environment variable "
        "(hosted) or none at all (self-hosted).",
    )
    tier: Tier = Field(
        description="hosted (a provider's cloud) or self-hosted (sensitive code may go there)."
    )
    strength: int = Field(ge=1, le=10, description="Capability, 1 (weakest) to 10 (strongest).")
    context_window: int | None = Field(
        default=None,
        gt=0,
        description="Prompt + completion tokens it accepts; None reads litellm's max_input_tokens.",
    )
    prices: list[PriceOverride] | None = Field(
        default=None,
        description="Price overrides for this model with effective dates; win over litellm's map.",
    )
    name: str | None = Field(
        default=None,
        description="Label, unique within a role (default: the model string); names the Router "
        "deployment and the ledger's answering candidate.",
    )

    @model_validator(mode="after")
    def _prices_are_for_this_model(self) -> Candidate:
        strays = sorted({p.model for p in self.prices or [] if p.model != self.model})
        if strays:
            raise ValueError(f"candidate {self.label}: price overrides for other models {strays}")
        return self

    @property
    def label(self) -> str:
        return self.name or self.model


class RoleCandidates(BaseModel):
    """The candidates for one role, in the route's order of preference (the tie-break)."""

    role: str = Field(description="Pipeline role: planner, coder or reviewer.")
    candidates: list[Candidate] = Field(min_length=1, description="Candidates, preferred first.")

    @model_validator(mode="after")
    def _labels_are_unique(self) -> RoleCandidates:
        check_unique_labels(self.candidates)
        return self


class RoutePolicy(BaseModel):
    """The knobs of the routing policy (see the module docstring for the policy itself)."""

    escalate_after_failure: bool = Field(
        default=True, description="Each failed attempt moves to a stronger candidate."
    )
    reviewer_may_equal_coder: bool = Field(
        default=False, description="Allow the reviewer to be a model that coded the change."
    )
    max_fallbacks: int = Field(
        default=2, ge=0, description="Candidates tried after the primary on provider errors."
    )
    num_retries: int = Field(
        default=2,
        ge=0,
        description="Retries on the same candidate for rate limits, 5xx and timeouts.",
    )
    retry_after_seconds: int = Field(
        default=0, ge=0, description="Least wait before a retry (backoff and retry-after win)."
    )
    require_known_window: bool = Field(
        default=True,
        description="Skip a candidate whose context window is unknown; False lets it through "
        "and leaves the check to the server (whose context error then falls back).",
    )
    timeout_seconds: float = Field(
        default=600.0, gt=0, description="Per-request timeout; a timeout counts as a failure."
    )
    label_strengths: dict[str, int] = Field(
        default_factory=lambda: dict(STRENGTH_LABELS),
        description="Issue label -> required strength, besides strength:N labels.",
    )


# -- prices and windows ---------------------------------------------------------------------


def candidate_price(
    candidate: Candidate, at: datetime | None = None, free_models: Collection[str] = ()
) -> TokenPrice:
    """The candidate's price at ``at``: its override in force, declared free, or litellm's map.

    ``replay/<model>`` is priced as ``<model>``. Unknown: ``tasks.llm.UnknownPrice``.
    """
    from tasks import llm, replay

    override = override_in_force(candidate.prices or [], candidate.model, at or datetime.now(UTC))
    if override is not None:
        return override_price(override)
    if candidate.model in free_models:
        return TokenPrice(input=0, output=0, cache_read=0, source="declared free")
    litellm = llm._litellm()
    model = candidate.model
    if model not in litellm.model_cost:
        model = replay.real_model(model)
    return llm.map_price(litellm, model)


def litellm_context_window(model: str) -> int | None:
    """litellm's ``max_input_tokens`` for ``model`` (``replay/<model>``: ``<model>``'s), or None."""
    from tasks import llm, replay

    litellm = llm._litellm()
    for name in dict.fromkeys((model, replay.real_model(model))):
        try:
            window = litellm.get_model_info(name).get("max_input_tokens")
        except Exception:  # litellm raises for a model it has not mapped
            continue
        if window:
            return int(window)
    return None


def window_of(candidate: Candidate, lookup: WindowOf | None = None) -> int | None:
    """The candidate's context window: its own setting, else ``lookup`` (litellm's model info)."""
    if candidate.context_window is not None:
        return candidate.context_window
    return (lookup or litellm_context_window)(candidate.model)


# -- choosing -------------------------------------------------------------------------------


def choose(
    role: str,
    candidates: Sequence[Candidate],
    *,
    required_strength: int,
    attempt: int = 1,
    sensitive: bool = False,
    exclude_models: Collection[str] = (),
    prompt_tokens: int = 0,
    max_tokens: int = 0,
    policy: RoutePolicy | None = None,
    price_of: PriceOf | None = None,
    window_lookup: WindowOf | None = None,
) -> list[Candidate]:
    """The candidates to try for one call: the primary first, then its fallbacks.

    ``exclude_models`` are models this call must not use; for the reviewer, the models that coded
    the change (ignored when ``policy.reviewer_may_equal_coder``). ``price_of`` defaults to
    `candidate_price` now; ``window_lookup`` to litellm's model info. Raises `NoCandidate`.
    """
    policy = policy or RoutePolicy()
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, not {attempt}")
    if not 1 <= required_strength <= 10:
        raise ValueError(f"required strength must be 1..10, not {required_strength}")
    excluded = set(exclude_models)
    if role == REVIEWER and policy.reviewer_may_equal_coder:
        excluded = set()
    needed = prompt_tokens + max_tokens
    rejected: dict[str, str] = {}
    adequate = []
    for candidate in candidates:
        reasons = _rejections(
            candidate, role, required_strength, sensitive, excluded, needed, window_lookup, policy
        )
        if reasons:
            rejected[candidate.label] = ", ".join(reasons)
        else:
            adequate.append(candidate)
    if not adequate:
        raise NoCandidate(
            _no_candidate_message(role, required_strength, sensitive, excluded, needed, rejected),
            role,
            rejected,
        )
    price = price_of or candidate_price
    costs = {id(c): worst_case_usd(price(c), prompt_tokens, max_tokens) for c in adequate}

    def cost(candidate: Candidate) -> float:
        return costs[id(candidate)]

    floor = required_strength
    if policy.escalate_after_failure:
        floor = escalated_floor(adequate, required_strength, attempt, cost)
    ordered = sorted((c for c in adequate if c.strength >= floor), key=cost)
    return ordered[: 1 + policy.max_fallbacks]


def _rejections(
    candidate: Candidate,
    role: str,
    required_strength: int,
    sensitive: bool,
    excluded: Collection[str],
    needed: int,
    window_lookup: WindowOf | None,
    policy: RoutePolicy,
) -> list[str]:
    """Why ``candidate`` may not answer this call (empty: it may)."""
    reasons = []
    if sensitive and candidate.tier == "hosted":
        reasons.append("hosted, and the repository is sensitive")
    if candidate.model in excluded:
        reasons.append("coded the change under review" if role == REVIEWER else "excluded")
    if candidate.strength < required_strength:
        reasons.append(f"strength {candidate.strength} < {required_strength}")
    window = window_of(candidate, window_lookup)
    if window is None and policy.require_known_window:
        reasons.append("context window unknown (set context_window)")
    elif window is not None and window < needed:
        reasons.append(f"context window {window:,} < {needed:,} tokens")
    return reasons


def _no_candidate_message(
    role: str,
    required_strength: int,
    sensitive: bool,
    excluded: Collection[str],
    needed: int,
    rejected: Mapping[str, str],
) -> str:
    head = "sensitive repository: no self-hosted candidate" if sensitive else "no candidate"
    message = (
        f"{head} for role {role} with strength ≥ {required_strength} "
        f"and a context window ≥ {needed:,} tokens"
    )
    if excluded:
        message += f", other than {', '.join(sorted(excluded))}"
    if not rejected:
        return f"{message}: the route lists no candidates for {role}"
    return f"{message}; excluded: " + "; ".join(f"{k} ({v})" for k, v in rejected.items())


def worst_case_usd(price: TokenPrice, prompt_tokens: int, max_tokens: int) -> float:
    """The most a call can cost at ``price``: the figure `choose` orders by and budgets reserve."""
    return prompt_tokens * price.input + max_tokens * price.output


def escalated_floor(
    adequate: Sequence[Candidate],
    required_strength: int,
    attempt: int,
    cost: Callable[[Candidate], float],
) -> int:
    """The least strength for ``attempt``: each failed attempt rises above the strength of the
    candidate the previous attempt chose (the cheapest at its floor), capped at the strongest."""
    floor = required_strength
    for _ in range(attempt - 1):
        previous = min((c for c in adequate if c.strength >= floor), key=cost)
        if not any(c.strength > previous.strength for c in adequate):
            break
        floor = previous.strength + 1
    return floor


def required_strength_from_labels(
    labels: Collection[str], default: int, named: Mapping[str, int] = STRENGTH_LABELS
) -> int:
    """The strength an issue asks for: the highest of its ``strength:N`` labels (N in 1..10) and
    named labels (``easy`` = 3, ``hard`` = 8 by default), case-insensitive; else ``default``."""
    found = []
    for label in labels:
        text = label.strip().lower()
        match = re.fullmatch(r"strength\s*[:=]\s*(\S+)", text)
        if match:
            found.append(_label_strength(label, match.group(1)))
        elif text in named:
            found.append(named[text])
    return max(found, default=default)


def _label_strength(label: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 10:
        raise ValueError(f"issue label {label!r}: write strength:N with N from 1 to 10")
    return int(value)


class Routed(NamedTuple):
    """What `choose_and_fit` settled for one call."""

    candidates: list[Candidate]
    """The primary, then its fallbacks."""
    messages: list[dict[str, Any]]
    """The messages to send: the caller's, or trimmed to fit."""
    prompt_tokens: int
    """Their token count, as the counter counted them."""
    trimmed: bool
    """Whether `trim_to_fit` had to cut them."""


def choose_and_fit(
    role: str,
    candidates: Sequence[Candidate],
    messages: Sequence[Mapping[str, Any]],
    *,
    max_tokens: int,
    counter: TokenCounter | None = None,
    window_lookup: WindowOf | None = None,
    **options: Any,
) -> Routed:
    """`choose` for ``messages`` as they are; when only the context windows stand in the way,
    `trim_to_fit` them for the widest candidate allowed and choose again.

    ``options`` are `choose`'s other keyword arguments (``required_strength``, ``attempt``,
    ``sensitive``, ...). The prompt is counted with the first candidate's tokenizer (a replay
    model's real one). Any other reason for no candidate raises its `NoCandidate`.
    """
    from tasks import replay

    count = counter or litellm_counter()
    model = replay.real_model(candidates[0].model) if candidates else ""
    as_given = [dict(m) for m in messages]
    prompt = count(model=model, messages=as_given)
    call = {"max_tokens": max_tokens, "window_lookup": window_lookup, **options}
    try:
        return Routed(
            choose(role, candidates, prompt_tokens=prompt, **call), as_given, prompt, False
        )
    except NoCandidate as exc:
        too_long = exc
    window = _widest_allowed_window(role, candidates, call)
    if window is None:
        raise too_long
    trimmed = trim_to_fit(as_given, model, window, max_tokens, count)
    prompt = count(model=model, messages=trimmed)
    return Routed(choose(role, candidates, prompt_tokens=prompt, **call), trimmed, prompt, True)


def _widest_allowed_window(
    role: str, candidates: Sequence[Candidate], call: dict[str, Any]
) -> int | None:
    """The largest known window among the candidates this call may use whatever its prompt."""
    policy = call.get("policy") or RoutePolicy()
    everyone = policy.model_copy(update={"max_fallbacks": len(candidates)})
    try:
        allowed = choose(role, candidates, **{**call, "prompt_tokens": 0, "policy": everyone})
    except NoCandidate:
        return None
    windows = [window_of(c, call.get("window_lookup")) for c in allowed]
    return max((w for w in windows if w is not None), default=None)


def check_unique_labels(candidates: Sequence[Candidate]) -> None:
    labels = [c.label for c in candidates]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ValueError(f"candidates {twice} appear twice: give each a distinct name")
