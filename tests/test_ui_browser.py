"""The Prefect UI in a real browser shows what the demo printed: a run's costs and the fleet figure.

One `prefect server start` on a free port (never 4200, where other servers run) with a fresh
PREFECT_HOME, the demo run against it as `mergemeter demo` in a subprocess, then headless Debian
Chromium through playwright opens the pages a user would: a resolve-issue flow run's Artifacts tab,
its model-calls table and outcome summary, the Artifacts page and the `cost-per-accepted-change`
artifact. Both of the server's UIs are checked: V1 at the URLs the demo prints (`/runs`,
`/artifacts`) and V2 (`/v2`, where the server's root redirects). Screenshots go to
`$MERGEMETER_SCREENSHOTS`, or `screenshots/` in the test's temporary folder; the path is printed.

Needs `apt-get install -y chromium` (or `MERGEMETER_CHROMIUM=<path to a Chromium>`) and
`pip install playwright==1.65.2`; never `playwright install` (it downloads a browser of its own,
which cannot work here). Missing either fails the test, it is not skipped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("MERGEMETER_CHROMIUM", "/usr/bin/chromium"))  # Debian's package
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PLAYWRIGHT_PIN = "playwright==1.65.2"
INSTALL_HINT = (
    "install Debian's Chromium with `apt-get update && apt-get install -y --no-install-recommends "
    f"chromium` and the driver with `{Path(sys.executable).parent}/pip install {PLAYWRIGHT_PIN}` "
    "(never `playwright install`)"
)
ISSUE = "sample/textkit#3"  # accepted on its second attempt: a run with a fix loop to show
FLEET_KEY = "cost-per-accepted-change"
RENDER_TIMEOUT_MS = 30_000


# --- the server -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@dataclass
class Server:
    api_url: str
    ui_url: str
    env: dict[str, str]  # a clean environment pointing at this server (for clients)
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui-server")
    port = _free_port()
    ui_url = f"http://127.0.0.1:{port}"
    api_url = f"{ui_url}/api"
    # Nothing of the caller's Prefect configuration (profile, API URL, database) leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # `--port` alone is not enough: the UI learns its API address from /ui-settings, which
        # is built from these settings and would otherwise send the browser to 127.0.0.1:4200.
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    prefect = Path(sys.executable).with_name("prefect")
    log = root / "prefect-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while not _healthy(api_url):
            if process.poll() is not None:
                pytest.fail(f"prefect server exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"prefect server did not answer {api_url}/health in 180 s:\n{_tail(log)}"
                )
            time.sleep(0.5)
        ui_settings = _get_json(f"{ui_url}/ui-settings")
        assert ui_settings["api_url"] == api_url, (
            f"the UI would talk to {ui_settings['api_url']}, not to this server: {ui_settings}"
        )
        yield Server(api_url, ui_url, env | {"PREFECT_API_URL": api_url}, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# --- the demo ---------------------------------------------------------------------------------


@dataclass
class Demo:
    output: str
    cost_per_accepted_change: str  # as printed, e.g. "$0.0062"
    issue_cost: str  # the cost column of ISSUE's row, e.g. "$0.0055"
    issue_outcome: str  # "accepted" or "needs-human"
    flow_run_id: str  # ISSUE's resolve-issue flow run
    fleet_artifact_id: str  # the latest version of the cost-per-accepted-change artifact


@pytest.fixture(scope="module")
def demo(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    mergemeter = Path(sys.executable).with_name("mergemeter")
    assert mergemeter.exists(), f"{mergemeter} is missing: install the project (`make demo`)"
    env = server.env | {"MERGEMETER_HOME": str(tmp_path_factory.mktemp("ui-demo-home"))}
    result = subprocess.run(
        [str(mergemeter), "demo"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mergemeter demo failed ({result.returncode}):\n{output}"
    assert f"Prefect server: {server.ui_url}" in output, f"the demo used another server:\n{output}"
    fleet = re.search(r"^cost per accepted change:\s+(\$\d+\.\d{4})\s*$", output, re.M)
    row = re.search(
        rf"^{re.escape(ISSUE)}\s+(accepted|needs-human)\s+\d+\s+[\d,]+\s+(\d+\.\d{{4}})\s",
        output,
        re.M,
    )
    assert fleet and row, f"the demo did not print the expected table:\n{output}"

    runs = _post_json(
        f"{server.api_url}/flow_runs/filter",
        {"flows": {"name": {"any_": ["resolve-issue"]}}, "sort": "START_TIME_DESC", "limit": 50},
    )
    matching = [r for r in runs if r["name"].startswith(f"{ISSUE} ")]
    assert len(matching) == 1, f"resolve-issue runs for {ISSUE}: {[r['name'] for r in runs]}"
    # Not GET /artifacts/{key}/latest: its "id" is the artifact collection's, not the version's.
    [latest] = _post_json(
        f"{server.api_url}/artifacts/filter",
        {"artifacts": {"key": {"any_": [FLEET_KEY]}}, "sort": "CREATED_DESC", "limit": 1},
    )
    print(
        f"\ndemo printed: cost per accepted change {fleet.group(1)}, {ISSUE} {row.group(1)} "
        f"${row.group(2)}; flow run {server.ui_url}/runs/flow-run/{matching[0]['id']}"
    )
    return Demo(
        output=output,
        cost_per_accepted_change=fleet.group(1),
        issue_cost=f"${row.group(2)}",
        issue_outcome=row.group(1),
        flow_run_id=matching[0]["id"],
        fleet_artifact_id=latest["id"],
    )


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(
        os.environ.get("MERGEMETER_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots")
    )
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the playwright package is missing: {INSTALL_HINT}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class UI:
    name: str  # "v1" or "v2"
    base: str  # where this UI's routes start
    page: Any
    shots: Path
    offsite: list[str]  # requests the page tried to send off this machine (all blocked)

    def goto(self, route: str) -> None:
        self.page.goto(f"{self.base}{route}")

    def shot(self, name: str) -> Path:
        path = self.shots / f"{self.name}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def visible(self, locator: Any, what: str, shot: str) -> None:
        """Wait until the SPA has rendered `locator`; on failure say what and where to look."""
        from playwright.sync_api import expect

        try:
            expect(locator.first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        except AssertionError as error:
            path = self.shot(f"{shot}-FAILED")
            raise AssertionError(
                f"[{self.name}] {what} not shown at {self.page.url}; screenshot {path}\n{error}"
            ) from None


@pytest.fixture(params=["v1", "v2"])
def ui(
    request: pytest.FixtureRequest, browser: Any, server: Server, screenshots: Path
) -> Iterator[UI]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    offsite: list[str] = []

    def block(route: Any) -> None:  # the demo is offline, and so is its UI
        offsite.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith(server.ui_url), block)
    base = server.ui_url if request.param == "v1" else f"{server.ui_url}/v2"
    try:
        yield UI(request.param, base, context.new_page(), screenshots, offsite)
    finally:
        if offsite:
            hosts = sorted({re.sub(r"^\w+://([^/]+).*", r"\1", u) for u in offsite})
            print(f"\n[{request.param}] blocked requests off this machine to: {', '.join(hosts)}")
        context.close()


def _table_column(table: Any, header: str) -> list[str]:
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert header in headers, f"no {header!r} column in {headers}"
    index = headers.index(header)
    return [
        row.locator("td").nth(index).inner_text().strip() for row in table.locator("tbody tr").all()
    ]


# --- the tests --------------------------------------------------------------------------------


def _open_run_artifacts(ui: UI, demo: Demo) -> None:
    """The resolve-issue run's page, Artifacts tab (V1 forgets the tab on reload and going back)."""
    page = ui.page
    ui.goto(f"/runs/flow-run/{demo.flow_run_id}")
    ui.visible(page.get_by_text(ISSUE, exact=False), "the run's name", "01-flow-run")
    tab = page.get_by_role("tablist").get_by_text("Artifacts", exact=True)
    ui.visible(tab, "the Artifacts tab", "01-flow-run")
    tab.first.click()
    for what in (f"Model calls of {ISSUE}", f"Outcome of {ISSUE}"):
        ui.visible(
            page.get_by_text(what, exact=True), f"the card {what!r}", "02-flow-run-artifacts"
        )
    ui.visible(page.get_by_text(FLEET_KEY, exact=True), "the fleet card", "02-flow-run-artifacts")


def test_flow_run_page_shows_the_model_call_table(ui: UI, demo: Demo) -> None:
    """The run's Artifacts tab lists its table of model calls, one cost_usd per call."""
    page = ui.page
    _open_run_artifacts(ui, demo)
    print(f"[{ui.name}] flow run artifacts: {ui.shot('02-flow-run-artifacts')}")

    page.get_by_text(f"Model calls of {ISSUE}", exact=True).first.click()
    table = page.locator("table").filter(has=page.get_by_text("cost_usd", exact=True))
    ui.visible(table, "the cost_usd column of the model-calls table", "03-model-calls")
    shot = ui.shot("03-model-calls")
    costs = _table_column(table.first, "cost_usd")
    assert costs and all(re.fullmatch(r"\d+\.\d+", c) for c in costs), (
        f"[{ui.name}] cost_usd cells {costs}; screenshot {shot}"
    )
    steps = set(_table_column(table.first, "step"))
    assert {"plan", "implement", "review"} <= steps, f"[{ui.name}] steps {steps}; screenshot {shot}"
    # The calls are the token part of the change's cost; the printed figure adds test compute.
    tokens_usd = sum(float(c) for c in costs)
    assert 0 < tokens_usd <= float(demo.issue_cost.lstrip("$")) + 0.00005, (
        f"[{ui.name}] the table's calls add up to ${tokens_usd:.6f}, more than the "
        f"{demo.issue_cost} the demo printed for {ISSUE}; screenshot {shot}"
    )
    print(f"[{ui.name}] model calls ({len(costs)} rows, ${tokens_usd:.4f}): {shot}")


def test_flow_run_page_shows_the_printed_cost_of_the_change(ui: UI, demo: Demo) -> None:
    """The run's outcome summary carries the outcome and the cost the demo printed for it."""
    page = ui.page
    _open_run_artifacts(ui, demo)
    page.get_by_text(f"Outcome of {ISSUE}", exact=True).first.click()
    status = "accepted" if demo.issue_outcome == "accepted" else "rejected"
    ui.visible(page.get_by_text(status, exact=True), f"the outcome {status!r}", "04-summary")
    ui.visible(page.get_by_text("replay-priced", exact=False), "the replay label", "04-summary")
    ui.visible(
        page.get_by_text(demo.issue_cost, exact=True),
        f"the cost {demo.issue_cost} that `mergemeter demo` printed for {ISSUE}",
        "04-summary",
    )
    print(f"[{ui.name}] outcome summary: {ui.shot('04-summary')}")


def test_artifacts_page_shows_the_printed_cost_per_accepted_change(ui: UI, demo: Demo) -> None:
    """Artifacts → cost-per-accepted-change → its latest version: the figure the demo printed."""
    page = ui.page
    ui.goto("/artifacts")
    card = page.get_by_text(FLEET_KEY, exact=True)
    ui.visible(card, f"the {FLEET_KEY} artifact", "05-artifacts")
    print(f"[{ui.name}] artifacts page: {ui.shot('05-artifacts')}")

    card.first.click()
    page.wait_for_url(re.compile(rf"/artifacts/key/{FLEET_KEY}"), timeout=RENDER_TIMEOUT_MS)
    latest = page.get_by_text(demo.fleet_artifact_id[:8], exact=True)
    ui.visible(latest, f"the latest version {demo.fleet_artifact_id[:8]}", "06-fleet-history")
    print(f"[{ui.name}] fleet artifact history: {ui.shot('06-fleet-history')}")

    latest.first.click()
    page.wait_for_url(re.compile(demo.fleet_artifact_id), timeout=RENDER_TIMEOUT_MS)
    heading = page.get_by_role(
        "heading", name=f"Cost per accepted change: {demo.cost_per_accepted_change}"
    )
    ui.visible(heading, f"the heading with {demo.cost_per_accepted_change}", "07-fleet-latest")
    ui.visible(
        page.get_by_text("Replay-priced", exact=False), "the replay label", "07-fleet-latest"
    )
    shot = ui.shot("07-fleet-latest")
    assert demo.cost_per_accepted_change in page.inner_text("body"), shot
    print(f"[{ui.name}] cost per accepted change {demo.cost_per_accepted_change}: {shot}")
