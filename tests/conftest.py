"""Shared fixtures: an offline environment, one Prefect test server per session, fresh forges."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("mergemeter-home")
    previous = os.environ.get("MERGEMETER_HOME")
    os.environ["MERGEMETER_HOME"] = str(home)
    yield
    if previous is None:
        os.environ.pop("MERGEMETER_HOME", None)
    else:
        os.environ["MERGEMETER_HOME"] = previous


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def demo(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A seeded demo forge and an empty ledger in a fresh folder."""
    from mergemeter.demo import fresh_demo

    return fresh_demo(tmp_path / "demo")


@pytest.fixture(scope="session")
def litellm() -> Any:
    """litellm, imported offline once (tasks.llm._litellm), with the Router's chained fallback
    failures kept out of the test output."""
    import logging

    from tasks.llm import _litellm

    logging.getLogger("LiteLLM Router").setLevel(logging.CRITICAL)
    return _litellm()
