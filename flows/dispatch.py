"""dispatch: every ready issue of the forge becomes one resolve_issue run; then the fleet figure.

With several routes (teams) the issues are split between them: an issue labelled
`route:<name>` goes to that route, the others by weight in a deterministic round robin (the
route furthest below its share takes the next issue), so teams can be compared on the same
stream of work by cost per accepted change (`mergemeter report --by route`).
"""

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
ROUTE_LABEL = "route:"


def template_for(labels: list[str], default: str) -> str:
    """An issue labelled `template:bugfix` runs the bugfix template; others run ``default``."""
    chosen = [
        label.removeprefix(TEMPLATE_LABEL) for label in labels if label.startswith(TEMPLATE_LABEL)
    ]
    return chosen[0] if chosen else default


def route_for(
    labels: list[str], routes: list[ModelRoute], weights: list[float], taken: list[int]
) -> int:
    """Index of the route for an issue; ``taken`` counts the issues each route has so far."""
    names = [r.name for r in routes]
    for label in labels:
        if label.startswith(ROUTE_LABEL) and label.removeprefix(ROUTE_LABEL) in names:
            return names.index(label.removeprefix(ROUTE_LABEL))
    return min(range(len(routes)), key=lambda i: ((taken[i] + 1) / weights[i], i))


@flow(log_prints=True)
def dispatch(
    forge: LocalForge | None = None,
    route: ModelRoute | None = None,
    routes: list[ModelRoute] | None = None,
    weights: list[float] | None = None,
    ledger: Ledger | None = None,
    budget: Budget | None = None,
    pricing: Pricing | None = None,
    label: str = "agent-ready",
    template: str = "default",
    max_attempts: int | None = None,
) -> list[ChangeReport]:
    """Resolve every open issue labelled ``label`` on every repository of ``forge``, oldest first.

    Each issue runs the template its `template:<name>` label names, else ``template``; with
    ``routes`` (and optional ``weights``), issues are split between the routes.
    """
    forge, ledger = forge or LocalForge(), ledger or Ledger()
    teams = routes or [route or default_route()]
    shares = weights or [1.0] * len(teams)
    if len(shares) != len(teams) or min(shares) <= 0:
        raise ValueError(f"weights {shares} must be positive, one per route ({len(teams)})")
    taken = [0] * len(teams)
    reports = []
    for repo in forge.repositories():
        for issue in forge.ready_issues(repo, label):
            chosen = route_for(issue.labels, teams, shares, taken)
            taken[chosen] += 1
            reports.append(
                resolve_issue(
                    repo=repo,
                    number=issue.number,
                    title=issue.title,
                    forge=forge,
                    route=teams[chosen],
                    ledger=ledger,
                    budget=budget,
                    pricing=pricing,
                    template=template_for(issue.labels, template),
                    max_attempts=max_attempts,
                )
            )
    print(publish_fleet_artifact(ledger, pricing))
    return reports
