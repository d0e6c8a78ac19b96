"""Serve the deployments: `dispatch` and `report` on schedules, `resolve_issue` on demand.

Runs that belong to a deployment get the Prefect UI's Retry button. Start with
`mergemeter serve` (or `python -m deployments.serve`) against a running Prefect server.
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import serve

from flows.dispatch import dispatch
from flows.report import report
from flows.resolve import resolve_issue

DEPLOYMENTS = ("dispatch", "resolve-issue", "report")


def deployments(interval_s: int = 3600, report_interval_s: int = 86400) -> dict[str, Any]:
    """Deployment name -> deployment (deployment names are `<flow name>/<name>`)."""
    return {
        "dispatch": dispatch.to_deployment(
            name="scheduled", interval=interval_s, tags=["mergemeter"]
        ),
        "resolve-issue": resolve_issue.to_deployment(name="on-demand", tags=["mergemeter"]),
        "report": report.to_deployment(
            name="daily", interval=report_interval_s, tags=["mergemeter"]
        ),
    }


def serve_all(
    interval_s: int = 3600, report_interval_s: int = 86400, only: list[str] | None = None
) -> None:
    chosen = deployments(interval_s, report_interval_s)
    unknown = set(only or []) - set(chosen)
    if unknown:
        raise SystemExit(
            f"unknown deployment(s) {sorted(unknown)}; choose from {', '.join(DEPLOYMENTS)}"
        )
    serve(*[d for name, d in chosen.items() if not only or name in only])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__)
    parser.add_argument("--interval", type=int, default=3600, help="dispatch schedule, seconds")
    parser.add_argument(
        "--report-interval", type=int, default=86400, help="report schedule, seconds"
    )
    parser.add_argument("--only", nargs="*", choices=DEPLOYMENTS, help="serve only these")
    args = parser.parse_args(argv)
    serve_all(args.interval, args.report_interval, args.only)


if __name__ == "__main__":
    main()
