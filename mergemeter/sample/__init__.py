"""The bundled demo: the textkit sample repository, its issues, and the replay cassette."""

from __future__ import annotations

from pathlib import Path

from blocks.model_route import ModelRoute, premium_replay_route, replay_route

SAMPLE_DIR = Path(__file__).resolve().parent
SAMPLE_REPO = SAMPLE_DIR / "textkit"
SAMPLE_ISSUES = SAMPLE_DIR / "issues.yaml"
SAMPLE_CASSETTE = SAMPLE_DIR / "cassette.yaml"
TEMPLATE_ISSUES = SAMPLE_DIR / "template_issues.yaml"
TEMPLATE_CASSETTE = SAMPLE_DIR / "template_cassette.yaml"


def default_route() -> ModelRoute:
    """The route used when none is given: the replayed demo team."""
    return replay_route(str(SAMPLE_CASSETTE))


def demo_routes() -> list[ModelRoute]:
    """The demo's two teams, splitting the issues between them."""
    return [default_route(), premium_replay_route(str(SAMPLE_CASSETTE))]
