"""The `mergemeter` command: run the demo, work the local forge, print the ledger's figures."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from mergemeter.settings import apply_offline_defaults, data_dir


def _demo(args: argparse.Namespace) -> int:
    from mergemeter.server import ensure_server, ui_url

    folder = data_dir() / "demo"
    started = time.monotonic()
    api_url = ensure_server(data_dir() / "logs")
    os.environ["PREFECT_API_URL"] = api_url
    print(f"Prefect server: {ui_url(api_url)}")

    from blocks.model_route import ModelRoute
    from flows.dispatch import dispatch
    from mergemeter.demo import fresh_demo, render_table, report_table
    from mergemeter.sample import demo_routes

    forge, ledger = fresh_demo(folder)
    routes: list[ModelRoute] = demo_routes()
    reports = dispatch(forge=forge, routes=routes, ledger=ledger)
    print()
    print(render_table(reports, ledger))
    print()
    print(
        f"Prefect UI (flow runs and the '{'cost-per-accepted-change'}' artifact): {ui_url(api_url)}/runs"
    )
    print(f"Artifacts: {ui_url(api_url)}/artifacts")
    print(f"Ledger: {ledger.url}   forge: {forge.root_path}")
    print()
    print(report_table(ledger))
    print(f"Report: mergemeter report --ledger {ledger.url} --by route")
    print(f"Demo wall time: {time.monotonic() - started:.1f}s")
    return 0


def _forge(args: argparse.Namespace) -> int:
    from blocks.local_forge import LocalForge

    forge = LocalForge(root=args.root)
    if args.forge_command == "add-repo":
        sha = forge.create_repository(args.repo, Path(args.source), sensitive=args.sensitive)
        print(f"created {args.repo} at {sha[:10]}")
    elif args.forge_command == "add-issue":
        issue = forge.add_issue(args.repo, args.title, args.body, args.label)
        print(f"filed {issue.ref}: {issue.title} {issue.labels}")
    elif args.forge_command == "issues":
        for issue in forge.ready_issues(args.repo, args.label):
            print(f"{issue.ref}  {issue.title}  {issue.labels}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from blocks.ledger import Ledger
    from blocks.rollups import rollup, window_start
    from mergemeter import report

    ledger = Ledger(database_url=args.ledger)
    rows, total = rollup(ledger, by=args.by, since=window_start(args.since))
    if args.json:
        print(report.as_json(rows, total))
    elif args.csv:
        print(report.as_csv(rows, total), end="")
    else:
        print(report.table(rows, total, args.by, ledger.totals().replay_priced))
    return 0


def _template(args: argparse.Namespace) -> int:
    from flows import template_cli

    if args.template_command == "validate":
        return template_cli.cmd_validate(args.targets)
    if args.template_command == "new":
        return template_cli.cmd_new(args.name, args.dir)
    if args.template_command == "schema":
        return template_cli.cmd_schema()
    return template_cli.cmd_list()


def _serve(args: argparse.Namespace) -> int:
    from deployments.serve import serve_all

    serve_all(interval_s=args.interval, report_interval_s=args.report_interval, only=args.only)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mergemeter", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    commands.add_parser("demo", help="resolve the sample repository's issues offline").set_defaults(
        run=_demo
    )

    forge = commands.add_parser("forge", help="work the embedded local forge")
    forge.add_argument("--root", default=None, help="forge folder (default: <data folder>/forge)")
    forge_commands = forge.add_subparsers(dest="forge_command", required=True)
    add_repo = forge_commands.add_parser("add-repo", help="create a repository from a folder")
    add_repo.add_argument("repo", help="owner/name")
    add_repo.add_argument("source", help="folder with the initial files")
    add_repo.add_argument(
        "--sensitive", action="store_true", help="its code may reach self-hosted models only"
    )
    add_issue = forge_commands.add_parser("add-issue", help="file an issue")
    add_issue.add_argument("repo")
    add_issue.add_argument("title")
    add_issue.add_argument("--body", default="")
    add_issue.add_argument("--label", action="append", default=[], help="repeatable")
    issues = forge_commands.add_parser("issues", help="list open issues with a label")
    issues.add_argument("repo")
    issues.add_argument("--label", default="agent-ready")
    forge.set_defaults(run=_forge)

    report = commands.add_parser("report", help="cost per accepted change from the ledger")
    report.add_argument("--ledger", default=None, help="ledger database URL")
    report.add_argument("--by", choices=["route", "template", "repo", "model"], default="route")
    report.add_argument("--since", default=None, help="ISO date/time, or a span like 7d, 12h")
    output = report.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable rows")
    output.add_argument("--csv", action="store_true", help="CSV rows")
    report.set_defaults(run=_report)

    templates = commands.add_parser("template", help="pipeline templates: list, validate, new")
    template_commands = templates.add_subparsers(dest="template_command", required=True)
    template_commands.add_parser("list", help="the shipped templates")
    validate = template_commands.add_parser(
        "validate", help="report every problem of template files"
    )
    validate.add_argument("targets", nargs="*", help="names or paths (default: all shipped)")
    new = template_commands.add_parser("new", help="write a commented template to start from")
    new.add_argument("name")
    new.add_argument("--dir", default=".", help="folder to write NAME.yaml in")
    template_commands.add_parser("schema", help="print the JSON Schema (for editor YAML support)")
    templates.set_defaults(run=_template)

    serve = commands.add_parser("serve", help="serve the dispatch and resolve_issue deployments")
    serve.add_argument("--interval", type=int, default=3600, help="dispatch schedule, seconds")
    serve.add_argument(
        "--report-interval", type=int, default=86400, help="report schedule, seconds"
    )
    serve.add_argument(
        "--only",
        nargs="*",
        choices=["dispatch", "resolve-issue", "report"],
        help="serve only these",
    )
    serve.set_defaults(run=_serve)
    return top


def main(argv: list[str] | None = None) -> int:
    apply_offline_defaults()
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
