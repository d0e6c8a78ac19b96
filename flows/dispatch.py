"""dispatch: every ready issue of the forge becomes one resolve_issue run; then the fleet figure."""

from __future__ import annotations

from prefect import flow

from blocks.budget import Budget
from blocks.ledger import Ledger
from blocks.local_forge import LocalForge
from blocks.model_route import ModelRoute
from blocks.pricing import Pricing
from flows.artifacts import publish_fleet_artifact
from flows.resolve import ChangeReport, resolve_issue
from mergemeter.sample import default_route


@flow(log_prints=True)
def dispatch(
    forge: LocalForge | None = None,
    route: ModelRoute | None = None,
    ledger: Ledger | None = None,
    budget: Budget | None = None,
    pricing: Pricing | None = None,
    label: str = "agent-ready",
    max_attempts: int = 3,
) -> list[ChangeReport]:
    """Resolve every open issue labelled ``label`` on every repository of ``forge``, oldest first."""
    forge, route, ledger = forge or LocalForge(), route or default_route(), ledger or Ledger()
    reports = []
    for repo in forge.repositories():
        for issue in forge.ready_issues(repo, label):
            reports.append(
                resolve_issue(
                    repo=repo,
                    number=issue.number,
                    title=issue.title,
                    forge=forge,
                    route=route,
                    ledger=ledger,
                    budget=budget,
                    pricing=pricing,
                    max_attempts=max_attempts,
                )
            )
    print(publish_fleet_artifact(ledger, pricing))
    return reports
