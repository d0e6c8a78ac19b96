"""Rendering roll-ups for people and programs: a readable table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

from blocks.rollups import Rollup

COLUMNS = [
    ("changes", "changes", "{}"),
    ("accepted", "merged", "{}"),
    ("acceptance_rate", "accept%", "{:.0%}"),
    ("total_usd", "total $", "{:.4f}"),
    ("cost_per_accepted_change", "$/accepted", "{:.4f}"),
    ("tokens_per_accepted_change", "tok/accepted", "{:,.0f}"),
    ("attempts_per_accepted_change", "att/accepted", "{:.2f}"),
    ("wasted_usd", "wasted $", "{:.4f}"),
    ("lines_per_accepted_change", "lines/PR", "{:.1f}"),
    ("accepted_per_day", "merged/day", "{:.2f}"),
]


def _cell(value: object, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def table(rows: list[Rollup], total: Rollup, by: str, replay_priced: bool) -> str:
    """A fixed-width table: one row per group and the overall row, then the cost parts."""
    width = max([len(by), 5, *(len(r.group) for r in rows)])
    header = f"{by:<{width}} " + " ".join(f"{title:>12}" for _, title, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for row in [*rows, total]:
        data = row.as_dict()
        lines.append(
            f"{row.group:<{width}} " + " ".join(f"{_cell(data[k], f):>12}" for k, _, f in COLUMNS)
        )
    lines.append("")
    lines.append(
        f"cost parts (all): model tokens ${total.tokens_usd:.4f}, test compute ${total.compute_usd:.4f}, "
        f"human review ${total.review_usd:.4f}, GPU ${total.gpu_usd:.4f}, "
        f"subscriptions ${total.subscription_usd:.4f}"
    )
    if replay_priced:
        lines.append("model figures are replay-priced (offline replay model, litellm price map)")
    return "\n".join(lines)


def markdown_table(rows: list[Rollup], total: Rollup, by: str) -> str:
    """The same columns as `table`, as a markdown table (for the Prefect UI's artifacts)."""
    lines = [
        f"| {by} | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for row in [*rows, total]:
        data = row.as_dict()
        lines.append(
            f"| {row.group} | " + " | ".join(_cell(data[k], f) for k, _, f in COLUMNS) + " |"
        )
    return "\n".join(lines)


def as_json(rows: list[Rollup], total: Rollup) -> str:
    return json.dumps({"groups": [r.as_dict() for r in rows], "all": total.as_dict()}, indent=2)


def as_csv(rows: list[Rollup], total: Rollup) -> str:
    buffer = io.StringIO()
    fields = list(total.as_dict())
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in [*rows, total]:
        writer.writerow(row.as_dict())
    return buffer.getvalue()
