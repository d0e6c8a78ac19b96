"""Routing benchmark: route modes replayed over recorded SWE-bench outcomes, metered by the ledger.

Issues arrive in a seeded random order. Every route mode — each single model, a few fixed
cheap→strong cascades, and the learned mode — resolves them through `route_change` into a fresh
ledger, with a recorded-outcome runner: for (issue, model) it reveals the recorded ``resolved``
(taken as "passed validation") and ``cost`` only when the attempt is made and paid for; an attempt
whose recorded cost exceeds its cost limit stops there, failed, costing the limit. Every figure
comes from the ledger (`Ledger.summary`, `Ledger.totals`). The offline optimum is the cheapest
fixed cascade of up to three models, found with hindsight by exhaustive search, that accepts at
least as many changes as the best single model.

The learned mode knows each model's token prices before any attempt (litellm's bundled price map,
through the litellm model strings in ``litellm_models.json``, or ``--models FILE``) and nothing
about any outcome until it pays for an attempt.

Rerun: python -m benchmarks routing --data /work/shared/data/swe-bench-bash-only-dev.json --seed 1 --seeds 10
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.recorded import (
    DEFAULT_DATA,
    DEFAULT_MODELS,
    Recorded,
    RecordedRunner,
    load,
    price_priors,
    repo_of,
)
from blocks.ledger import Ledger
from tasks.routing_history import attempt_history
from tasks.routing_policy import (
    CascadeMode,
    Issue,
    LearnedMode,
    SingleModelMode,
    route_change,
)

BUDGET_USD = 3.0
VALUE_USD = 4.0
OPTIMUM_DEPTH = 3

Mode = SingleModelMode | CascadeMode | LearnedMode


# -- modes ------------------------------------------------------------------------------------
def fixed_cascades(data: Recorded, budget_usd: float) -> list[CascadeMode]:
    """Cheap→strong cascades a person would set up from the leaderboard's averages."""
    n = len(data.instances)
    mean_cost = {m: sum(data.outcomes[(m, i)][1] for i in data.instances) / n for m in data.models}
    rate = {m: sum(data.outcomes[(m, i)][0] for i in data.instances) / n for m in data.models}
    by_cost = sorted(data.models, key=lambda m: mean_cost[m])
    strongest = max(data.models, key=lambda m: rate[m])
    capable = [m for m in by_cost if rate[m] >= statistics.median(rate.values())]
    chains = [
        [by_cost[0], strongest],
        [*by_cost[:3], strongest],
        [*capable[:2], strongest],
    ]
    unique: list[list[str]] = []
    for chain in chains:
        chain = list(dict.fromkeys(chain))
        if chain not in unique:
            unique.append(chain)
    return [CascadeMode(models=chain, budget_usd=budget_usd) for chain in unique]


def learned_mode(
    data: Recorded, seed: int, budget_usd: float, prior: dict[str, float] | None = None
) -> LearnedMode:
    """The learned mode over every model; its trial order is shuffled so no ranking leaks in."""
    candidates = list(data.models)
    random.Random(f"candidates-{seed}").shuffle(candidates)
    return LearnedMode(
        candidates=candidates,
        budget_usd=budget_usd,
        value_usd=VALUE_USD,
        price_prior_usd=prior or {},
    )


# -- one run through a fresh ledger -----------------------------------------------------------
@dataclass(frozen=True)
class Result:
    """One route mode's figures over all issues, as the ledger reports them."""

    route: str
    changes: int
    accepted: float
    total_usd: float
    attempts: float
    sequences: Counter[str] = field(default_factory=Counter, compare=False)

    @property
    def rate(self) -> float:
        return self.accepted / self.changes

    @property
    def per_accepted(self) -> float | None:
        return self.total_usd / self.accepted if self.accepted else None


def run_mode(mode: Mode, data: Recorded, order: Sequence[str], folder: Path) -> Result:
    """Resolve every issue in ``order`` with ``mode`` into a new SQLite ledger; read it back."""
    path = folder / f"ledger-{len(list(folder.iterdir()))}.db"
    ledger = Ledger(database_url=f"sqlite:///{path}")
    numbers = {instance: k for k, instance in enumerate(data.instances, start=1)}
    runner = RecordedRunner(data, numbers)
    for instance in order:
        issue = Issue(repo=repo_of(instance), number=numbers[instance], title=instance)
        route_change(mode, ledger, runner, issue)
    (row,) = ledger.summary()
    totals = ledger.totals()
    return Result(
        mode.name, row.changes, row.accepted, row.total_cost_usd, totals.calls, _late(ledger)
    )


def _late(ledger: Ledger, last: int = 100) -> Counter[str]:
    """How the last ``last`` changes were attempted (model sequences), from the ledger."""
    steps: dict[int, list[str]] = defaultdict(list)
    for row in attempt_history(ledger):
        steps[row.change_id].append(short(row.model))
    changes = sorted(steps)[-last:]
    return Counter(" > ".join(steps[c]) for c in changes)


# -- the offline optimum (hindsight, plain Python) --------------------------------------------
@dataclass(frozen=True)
class Optimum:
    """A fixed cascade and what it accepts and costs over all issues."""

    models: tuple[str, ...]
    accepted: int
    total_usd: float

    @property
    def per_accepted(self) -> float:
        return self.total_usd / self.accepted


def offline_optimum(
    data: Recorded, min_accepted: int, depth: int = OPTIMUM_DEPTH
) -> Optimum | None:
    """The cheapest cascade of up to ``depth`` models accepting at least ``min_accepted``."""
    resolved = [[data.outcomes[(m, i)][0] for i in data.instances] for m in data.models]
    cost = [[data.outcomes[(m, i)][1] for i in data.instances] for m in data.models]
    best: tuple[tuple[int, ...], int, float] | None = None
    for k in range(1, depth + 1):
        for chain in itertools.permutations(range(len(data.models)), k):
            accepted, total = 0, 0.0
            for j in range(len(data.instances)):
                for m in chain:
                    total += cost[m][j]
                    if resolved[m][j]:
                        accepted += 1
                        break
            if accepted >= min_accepted and (best is None or total < best[2]):
                best = (chain, accepted, total)
    if best is None:
        return None
    return Optimum(tuple(data.models[m] for m in best[0]), best[1], best[2])


# -- the report -------------------------------------------------------------------------------
def short(model: str) -> str:
    """A model's name without its parenthesised details: "GPT-5 mini (2025-08-07)" → "GPT-5 mini"."""
    return model.split(" (", 1)[0]


def _label(route: str) -> str:
    kind, _, models = route.partition(":")
    return f"{kind} " + " > ".join(short(m) for m in models.split(" > ")) if models else route


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.3f}"


def _header(width: int) -> str:
    columns = f"{'accepted':>8} {'rate':>6} {'total':>9} {'$/accepted':>10} {'attempts':>8}"
    return f"{'route mode':<{width}} {columns}"


def _row(name: str, r: Result, width: int) -> str:
    return (
        f"{name:<{width}} {r.accepted:>8.1f} {r.rate:>6.1%} {_money(r.total_usd):>9} "
        f"{_money(r.per_accepted):>10} {r.attempts / r.changes:>8.2f}"
    )


def _spread(values: Sequence[float], money: bool = False) -> str:
    fmt = _money if money else (lambda v: f"{v:.1f}")
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"mean {fmt(statistics.mean(values))} ± {fmt(sd)}, min {fmt(min(values))}, max {fmt(max(values))}"


def _mean(learned: Sequence[Result]) -> Result:
    return Result(
        f"learned (mean of {len(learned)} seeds)",
        learned[0].changes,
        statistics.mean(r.accepted for r in learned),
        statistics.mean(r.total_usd for r in learned),
        statistics.mean(r.attempts for r in learned),
    )


def report(
    data: Recorded,
    fixed: list[Result],
    learned: list[Result],
    optimum: Optimum | None,
    config: LearnedMode,
) -> bool:
    """Print the table and the verdict; True when the learned mode meets the target."""
    best = max(
        (r for r in fixed if r.route.startswith("single:")),
        key=lambda r: (r.accepted, -r.total_usd),
    )
    left_out = (
        f", {data.dropped} issues without a record for every model left out" if data.dropped else ""
    )
    print(data.attribution)
    print(f"{len(data.instances)} issues × {len(data.models)} models{left_out}; "
          f"per-change budget ${BUDGET_USD:g} for cascades and learned; figures from the ledger")  # fmt: skip
    width = max(len(name) for name in [*(_label(r.route) for r in fixed), _mean(learned).route]) + 1
    print("\n" + _header(width))
    for r in sorted(fixed, key=lambda r: r.per_accepted or float("inf")):
        print(_row(_label(r.route), r, width))
    print(_row(_mean(learned).route, _mean(learned), width))
    print("(single models and cascades do not depend on the issue order: the same for every seed)")
    per = [r.per_accepted or float("inf") for r in learned]
    print(
        f"\nlearned, over {len(learned)} seeds:  accepted {_spread([r.accepted for r in learned])}"
    )
    print(f"  cost per accepted change {_spread(per, money=True)}")
    print(f"  its configuration: {config.model_dump(exclude={'candidates', 'price_prior_usd'})}")
    print(f"  price priors from litellm's price map for {len(config.price_prior_usd)} of "
          f"{len(config.candidates)} models (the rest get trials)")  # fmt: skip
    top = ", ".join(f"{seq} ({n})" for seq, n in learned[0].sequences.most_common(4))
    print(f"  first seed, its last 100 changes: {top}")
    print(f"\nbest single model by accepted: {_label(best.route)}: {best.accepted:.0f} accepted, "
          f"{_money(best.per_accepted)} per accepted")  # fmt: skip
    mean_accepted = statistics.mean(r.accepted for r in learned)
    ok = mean_accepted >= best.accepted
    if optimum is None:
        print(f"offline optimum: no cascade of up to {OPTIMUM_DEPTH} models accepts that many")
        return False
    ratio = statistics.mean(per) / optimum.per_accepted
    print(f"offline optimum (hindsight; cheapest cascade of ≤{OPTIMUM_DEPTH} accepting ≥ {best.accepted:.0f}): "
          f"{' > '.join(short(m) for m in optimum.models)}: {optimum.accepted} accepted, "
          f"{_money(optimum.total_usd)}, {_money(optimum.per_accepted)} per accepted")  # fmt: skip
    ok = ok and ratio <= 2.0
    print(f"learned: {mean_accepted:.1f} accepted (target ≥ {best.accepted:.0f}); cost per accepted "
          f"{ratio:.2f}× the optimum (target ≤ 2×, goal ≤ 1.15×): "
          + ("target met" if ok else "target NOT met"))  # fmt: skip
    return ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks routing", description=__doc__)
    parser.add_argument("--data", default=DEFAULT_DATA, help="recorded outcomes (JSON)")
    parser.add_argument("--seed", type=int, default=1, help="first seed of the issue order")
    parser.add_argument("--seeds", type=int, default=10, help="seeds for the learned mode")
    parser.add_argument(
        "--models",
        default=str(DEFAULT_MODELS),
        help="litellm model string per recorded model, for price priors (JSON)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    started = time.monotonic()
    data = load(args.data)
    prior = price_priors(data, args.models)
    modes: list[Mode] = [SingleModelMode(model=m) for m in data.models]
    modes += fixed_cascades(data, BUDGET_USD)
    seeds = range(args.seed, args.seed + args.seeds)
    with tempfile.TemporaryDirectory(prefix="mm-routing-") as tmp:
        folder = Path(tmp)
        fixed = [run_mode(mode, data, data.instances, folder) for mode in modes]
        learned = [
            run_mode(
                learned_mode(data, seed, BUDGET_USD, prior), data, issue_order(data, seed), folder
            )
            for seed in seeds
        ]
    best_single = max(r.accepted for r in fixed if r.route.startswith("single:"))
    met = report(
        data,
        fixed,
        learned,
        offline_optimum(data, int(best_single)),
        learned_mode(data, 0, BUDGET_USD, prior),
    )
    print(f"\n{data.attribution}")
    print(f"rerun: python -m benchmarks routing --data {args.data} --seed {args.seed} "
          f"--seeds {args.seeds}   [{time.monotonic() - started:.0f}s]")  # fmt: skip
    return 0 if met else 1


def issue_order(data: Recorded, seed: int) -> list[str]:
    """The seeded random order in which the issues arrive."""
    order = list(data.instances)
    random.Random(seed).shuffle(order)
    return order
