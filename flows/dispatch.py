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

TEMPLATE_LABEL = "template:"


def template_for(labels: list[str], default: str) -> str:
    """An issue labelled `template:bugfix` runs the bugfix template; others run ``default``."""
    chosen = [
        label.removeprefix(TEMPLATE_LABEL) for label in labels if label.startswith(TEMPLATE_LABEL)
    ]
    return chosen[0] if chosen else default


@flow(log_prints=True)
def dispatch(
    forge: LocalForge | None = None,
    route: ModelRoute | None = None,
    ledger: Ledger | None = None,
    budget: Budget | None = None,
    pricing: Pricing | None = None,
    label: str = "agent-ready",
    template: str = "default",
    max_attempts: int | None = None,
) -> list[ChangeReport]:
    """Resolve every open issue labelled ``label`` on every repository of ``forge``, oldest first.

    Each issue runs the template its `template:<name>` label names, else ``template``.
    """
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
                    template=template_for(issue.labels, template),
                    max_attempts=max_attempts,
                )
            )
    print(publish_fleet_artifact(ledger, pricing))
    return reports
