"""Serve the deployments: `dispatch` and `report` on schedules, `resolve_issue` on demand.

Runs that belong to a deployment get the Prefect UI's Retry button. Start with
`mergemeter serve` (or `python -m deployments.serve`) against a running Prefect server.
"""

from __future__ import annotations

from prefect import serve

from flows.dispatch import dispatch
from flows.report import report
from flows.resolve import resolve_issue


def serve_all(interval_s: int = 3600, report_interval_s: int = 86400) -> None:
    serve(
        dispatch.to_deployment(name="scheduled", interval=interval_s, tags=["mergemeter"]),
        resolve_issue.to_deployment(name="on-demand", tags=["mergemeter"]),
        report.to_deployment(name="daily", interval=report_interval_s, tags=["mergemeter"]),
    )


if __name__ == "__main__":
    serve_all()
