"""Recorded outcomes for the routing benchmark: the data file, a runner that reveals an outcome only
when an attempt is paid for, and price priors from litellm's price map.

The file has the SWE-bench bash-only schema: per model (name, date), per instance (``resolved``,
``cost`` in USD, ``api_calls``). Any file of that schema works (``--data FILE``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from tasks.routing_policy import AttemptOutcome, Issue, litellm_price_prior

DEFAULT_DATA = "/work/shared/data/swe-bench-bash-only-dev.json"
DEFAULT_MODELS = Path(__file__).with_name("litellm_models.json")
PRICE_SOURCE = "recorded outcome (SWE-bench bash-only)"


class RecordedAttempt(BaseModel):
    resolved: bool
    cost: float
    api_calls: int | None = None


class RecordedModel(BaseModel):
    name: str
    date: str = ""
    per_instance: dict[str, RecordedAttempt]


class RecordedFile(BaseModel):
    source: str
    license: str
    split: str = ""
    fields: str = ""
    models: list[RecordedModel]


@dataclass(frozen=True)
class Recorded:
    """Outcomes by (model, instance), for the instances every model has a record of."""

    source: str
    license: str
    models: tuple[str, ...]
    instances: tuple[str, ...]
    outcomes: dict[tuple[str, str], tuple[bool, float]]
    dropped: int

    @property
    def attribution(self) -> str:
        return f"Data: {self.source}. License: {self.license}."


def load(path: str | Path) -> Recorded:
    parsed = RecordedFile.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    if not parsed.models:
        raise ValueError(f"{path}: no models")
    every = [set(m.per_instance) for m in parsed.models]
    common = sorted(set.intersection(*every))
    if not common:
        raise ValueError(f"{path}: no instance has a record for every model")
    outcomes = {
        (m.name, i): (m.per_instance[i].resolved, m.per_instance[i].cost)
        for m in parsed.models
        for i in common
    }
    return Recorded(
        source=parsed.source,
        license=parsed.license,
        models=tuple(m.name for m in parsed.models),
        instances=tuple(common),
        outcomes=outcomes,
        dropped=len(set.union(*every)) - len(common),
    )


def repo_of(instance: str) -> str:
    return instance.split("__", 1)[0]


class RecordedRunner:
    """Reveals a recorded outcome only when an attempt is made, and charges what it cost."""

    price_source = PRICE_SOURCE

    def __init__(self, data: Recorded, numbers: dict[str, int]) -> None:
        self.data = data
        self.instance_of = {n: i for i, n in numbers.items()}

    def attempt(self, issue: Issue, model: str, cost_limit_usd: float | None) -> AttemptOutcome:
        resolved, cost = self.data.outcomes[(model, self.instance_of[issue.number])]
        if cost_limit_usd is not None and cost > cost_limit_usd:
            return AttemptOutcome(passed=False, cost_usd=cost_limit_usd, stopped_at_limit=True)
        return AttemptOutcome(passed=resolved, cost_usd=cost)


class LitellmModels(BaseModel):
    """Which litellm model string each recorded model is, and the size of a typical attempt."""

    about: str = ""
    attempt_tokens: dict[str, int | str]
    models: dict[str, str]


def price_priors(data: Recorded, path: str | Path) -> dict[str, float]:
    """Expected cost of one attempt per recorded model, from litellm's price map alone.

    Known before any attempt: token prices × the file's typical attempt size. A model the file
    does not map, or litellm does not price, has no prior (the learned mode gives it trials).
    """
    names = LitellmModels.model_validate_json(Path(path).read_text(encoding="utf-8"))
    tokens = names.attempt_tokens
    mapped = {m: names.models[m] for m in data.models if m in names.models}
    prior = litellm_price_prior(
        sorted(set(mapped.values())), int(tokens["prompt"]), int(tokens["completion"])
    )
    return {m: prior[key] for m, key in mapped.items() if key in prior}
