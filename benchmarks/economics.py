"""Economics benchmark: is every recorded cost the one litellm computes, and does any budget
ever overshoot?

1. Accounting: N replayed calls (Claude Sonnet and DeepSeek V4 Flash prices, mixed prompt-cache
   hits) through the metered call; each ledger row is checked against litellm's
   ``completion_cost`` for the same usage. Goal: 0 mismatches.
2. Budgets: M fuzzed runs — random prices, caps, prompt sizes, ``max_tokens`` and answer lengths,
   two changes sharing fleet caps — and the largest overshoot of any cap. Goal: 0.

Rerun: python -m benchmarks economics --calls 1000 --runs 1000 --seed 1
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

from blocks.budget import Budget, BudgetExceeded
from blocks.ledger import Ledger
from blocks.model_route import ModelChoice, ModelRoute
from blocks.pricing import PriceOverride
from mergemeter.settings import apply_offline_defaults

MODELS = ["replay/claude-sonnet-4-5", "replay/deepseek/deepseek-v4-flash"]
WORDS = "plan the change edit the file run tests review the diff merge it".split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _cassette(folder: Path, entries: dict[str, dict[str, dict[int, object]]]) -> str:
    path = folder / "cassette.yaml"
    path.write_text(yaml.safe_dump(entries), encoding="utf-8")
    return str(path)


def accounting(calls: int, rng: random.Random, folder: Path) -> tuple[int, int, int]:
    """(calls made, calls with cache hits, rows whose cost differs from completion_cost)."""
    from litellm import ModelResponse
    from litellm.types.utils import PromptTokensDetailsWrapper, Usage

    from tasks.llm import _litellm, complete

    litellm = _litellm()
    entries: dict[str, dict[str, dict[int, object]]] = {"bench/acct#1": {"step": {}}}
    prompts = []
    for index in range(1, calls + 1):
        prompt = _text(rng, rng.randint(20, 600))
        cached = rng.choice([0, 0, rng.randint(1, 400)])
        entries["bench/acct#1"]["step"][index] = {
            "answer": _text(rng, rng.randint(1, 300)),
            "cached_tokens": cached,
        }
        prompts.append(prompt)
    ledger = Ledger(database_url=f"sqlite:///{folder / 'accounting.db'}")
    route = ModelRoute(
        name="bench",
        roles={"a": ModelChoice(model=MODELS[0]), "b": ModelChoice(model=MODELS[1])},
        cassette=_cassette(folder, entries),
    )
    change = ledger.start_change("bench/acct", 1, "t", route.name, None, "default", "sha")
    assert change.id is not None
    for index, prompt in enumerate(prompts, start=1):
        complete(
            ledger=ledger, route=route, change_id=change.id, step="step", attempt=index,
            role=rng.choice("ab"), messages=[{"role": "user", "content": prompt}],
            replay_key=f"bench/acct#1/step/{index}",
        )  # fmt: skip
    mismatches = hits = 0
    for row in ledger.calls(change.id):
        hits += row.cached_tokens > 0
        response = ModelResponse(model=row.model.removeprefix("replay/"))
        response.usage = Usage(  # type: ignore[attr-defined]
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            total_tokens=row.prompt_tokens + row.completion_tokens,
            prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=row.cached_tokens),
        )
        expected = litellm.completion_cost(completion_response=response)
        mismatches += abs(expected - row.cost_usd) > 1e-12
    return len(ledger.calls(change.id)), hits, mismatches


def fuzz_budgets(
    runs: int, calls_per_run: int, rng: random.Random, folder: Path
) -> tuple[float, int, int]:
    """(largest overshoot in USD or tokens over any cap, calls sent, calls refused)."""
    from tasks.llm import complete

    worst, sent, refused = 0.0, 0, 0
    for run in range(runs):
        model = rng.choice(MODELS)
        entries = {f"bench/fuzz#{n}": {"step": {}} for n in (1, 2)}
        plan = []
        for index in range(1, rng.randint(1, calls_per_run) + 1):
            issue = rng.choice((1, 2))
            entries[f"bench/fuzz#{issue}"]["step"][index] = _text(rng, rng.randint(0, 2500))
            plan.append((issue, index, _text(rng, rng.randint(1, 500)), rng.randint(1, 3000)))
        route = ModelRoute(
            name=f"fuzz-{run}",
            roles={"coder": ModelChoice(model=model)},
            cassette=_cassette(folder, entries),
            prices=[PriceOverride(model=model, effective_from=date(2000, 1, 1),
                                  input_usd_per_mtok=rng.uniform(0.01, 20),
                                  output_usd_per_mtok=rng.uniform(0.01, 80))] if rng.random() < 0.5 else [],
        )  # fmt: skip
        budget = Budget(
            per_change_usd=rng.uniform(0, 0.2), per_change_tokens=rng.randint(0, 20_000),
            per_issue_usd=rng.uniform(0, 0.3), fleet_day_usd=rng.uniform(0, 0.3),
            fleet_day_tokens=rng.randint(0, 30_000),
        )  # fmt: skip
        ledger = Ledger(database_url=f"sqlite:///{folder / f'fuzz-{run}.db'}")
        changes = {
            n: ledger.start_change("bench/fuzz", n, "t", route.name, None, "default", "s").id
            for n in (1, 2)
        }
        for issue, index, prompt, max_tokens in plan:
            try:
                complete(
                    ledger=ledger, route=route, change_id=changes[issue], step="step", attempt=index,  # type: ignore[arg-type]
                    role="coder", messages=[{"role": "user", "content": prompt}],
                    replay_key=f"bench/fuzz#{issue}/step/{index}", max_tokens=max_tokens, budget=budget,
                )  # fmt: skip
                sent += 1
            except BudgetExceeded:
                refused += 1
        rows = ledger.calls()
        for change_id in changes.values():
            mine = [r for r in rows if r.change_id == change_id]
            usd = sum(r.cost_usd for r in mine)
            tokens = sum(r.prompt_tokens + r.completion_tokens for r in mine)
            worst = max(worst, usd - budget.per_change_usd, tokens - budget.per_change_tokens,  # type: ignore[operator]
                        usd - budget.per_issue_usd)  # type: ignore[operator]  # fmt: skip
        fleet_usd = sum(r.cost_usd for r in rows)
        fleet_tokens = sum(r.prompt_tokens + r.completion_tokens for r in rows)
        worst = max(worst, fleet_usd - budget.fleet_day_usd, fleet_tokens - budget.fleet_day_tokens)  # type: ignore[operator]
    return max(worst, 0.0), sent, refused


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks economics", description=__doc__)
    parser.add_argument("--calls", type=int, default=1000, help="replayed calls to check")
    parser.add_argument("--runs", type=int, default=1000, help="fuzzed budget runs")
    parser.add_argument("--calls-per-run", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    apply_offline_defaults()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp:
        started = time.monotonic()
        made, hits, mismatches = accounting(args.calls, rng, Path(tmp))
        accounting_s = time.monotonic() - started
        started = time.monotonic()
        overshoot, sent, refused = fuzz_budgets(args.runs, args.calls_per_run, rng, Path(tmp))
        fuzz_s = time.monotonic() - started
    print(f"command: python -m benchmarks economics --calls {args.calls} --runs {args.runs} "
          f"--calls-per-run {args.calls_per_run} --seed {args.seed}")  # fmt: skip
    print(f"accounting: {made} replayed calls ({hits} with prompt-cache hits), "
          f"{mismatches} mismatches against litellm completion_cost   [{accounting_s:.1f}s]")  # fmt: skip
    print(f"budgets:    {args.runs} fuzzed runs, {sent} calls sent, {refused} refused before sending, "
          f"largest overshoot over any cap: {overshoot:g}   [{fuzz_s:.1f}s]")  # fmt: skip
    return 0 if mismatches == 0 and overshoot == 0 else 1
