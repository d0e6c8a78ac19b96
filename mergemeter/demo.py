"""The demo: seed the sample repository and its issues on a fresh local forge, resolve them all.

Each run starts from a clean demo folder (forge and ledger), so running it twice works and the
figures printed are exactly this run's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from blocks.forge import Issue
from blocks.ledger import Ledger
from blocks.local_forge import LocalForge
from blocks.pricing import Pricing
from blocks.rollups import rollup
from flows.resolve import ChangeReport
from mergemeter.sample import SAMPLE_ISSUES, SAMPLE_REPO


def seed_forge(forge: LocalForge) -> list[Issue]:
    """Create the sample repository and file the sample issues; returns the issues."""
    forge.create_repository("sample/textkit", SAMPLE_REPO)
    return file_issues(forge, SAMPLE_ISSUES)


def file_issues(forge: LocalForge, path: Path) -> list[Issue]:
    """File the issues of an issues file (repo, label, issues: title, body, labels)."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        forge.add_issue(
            spec["repo"], item["title"], item["body"], [spec["label"], *item.get("labels", [])]
        )
        for item in spec["issues"]
    ]


def fresh_demo(folder: Path) -> tuple[LocalForge, Ledger]:
    """An empty demo folder with a seeded forge and an empty ledger."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    forge = LocalForge(root=str(folder / "forge"))
    seed_forge(forge)
    return forge, Ledger(database_url=f"sqlite:///{folder / 'ledger.db'}")


def render_table(
    reports: list[ChangeReport], ledger: Ledger, pricing: Pricing | None = None
) -> str:
    """The per-issue table and the totals, all read back from the ledger."""
    header = (
        f"{'issue':<18} {'outcome':<11} {'attempts':>8} {'tokens':>8} {'cost (USD)':>11}  "
        f"{'route':<34} title"
    )
    lines = [header, "-" * len(header)]
    ids = [r.change_id for r in reports if r.change_id is not None]
    for change in ledger.changes(ids):
        assert change.id is not None
        _, own = rollup(ledger, pricing, change_ids=[change.id])
        outcome = "accepted" if change.status == "accepted" else "needs-human"
        lines.append(
            f"{change.repo + '#' + str(change.issue):<18} {outcome:<11} {change.attempts:>8} "
            f"{own.tokens:>8,} {own.total_usd:>11.4f}  {change.route:<34} {change.title}"
        )
    _, total = rollup(ledger, pricing, change_ids=ids)
    per_change = total.cost_per_accepted_change
    replay = " (model calls replay-priced: offline replay model, litellm price map)"
    lines += [
        "",
        f"total cost:                 ${total.total_usd:.4f}"
        f"{replay if ledger.totals(ids).replay_priced else ''}",
        f"  model tokens ${total.tokens_usd:.4f} + test compute ${total.compute_usd:.4f}",
        f"accepted changes:           {total.accepted} of {total.changes}",
        "cost per accepted change:   "
        + (f"${per_change:.4f}" if per_change is not None else "n/a (nothing accepted)"),
    ]
    return "\n".join(lines)


def report_table(ledger: Ledger, pricing: Pricing | None = None) -> str:
    """`mergemeter report --by route` for this ledger: the teams compared."""
    from mergemeter import report

    rows, total = rollup(ledger, pricing, by="route")
    return report.table(rows, total, "route", ledger.totals().replay_priced)
