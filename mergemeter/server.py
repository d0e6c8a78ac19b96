"""A long-lived local Prefect server for the demo, started once and reused.

The embedded ephemeral server drops task-run records when its process exits, so the UI would be
incomplete; a `prefect server start` process in the background keeps everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_API_URL = "http://127.0.0.1:4200/api"


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def ensure_server(log_dir: Path, api_url: str | None = None, wait_s: float = 180) -> str:
    """Return the API URL of a running server, starting one on 127.0.0.1 if none answers."""
    api_url = api_url or os.environ.get("PREFECT_API_URL") or DEFAULT_API_URL
    if healthy(api_url):
        return api_url
    host_port = api_url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "prefect-server.log"
    prefect = Path(sys.executable).with_name("prefect")
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    # `--port` does not reach /ui-settings: without these the UI's browser side talks to :4200.
    env |= {"PREFECT_SERVER_API_HOST": host, "PREFECT_SERVER_API_PORT": port or "4200"}
    with open(log_path, "ab") as log:
        subprocess.Popen(
            [str(prefect), "server", "start", "--host", host, "--port", port or "4200"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if healthy(api_url):
            return api_url
        time.sleep(0.5)
    raise RuntimeError(
        f"the Prefect server did not answer at {api_url} within {wait_s:.0f}s; see {log_path}"
    )


def ui_url(api_url: str) -> str:
    return api_url.removesuffix("/api")
