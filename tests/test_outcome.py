from typing import Any

import pytest

from flows import outcome


@pytest.mark.parametrize(
    ("status", "event"),
    [
        ("accepted", "mergemeter.change.accepted"),
        ("rejected", "mergemeter.change.rejected"),
        ("abandoned-budget", "mergemeter.change.abandoned"),
    ],
)
def test_event_names(status: str, event: str) -> None:
    assert outcome.event_name(status) == event


def test_costly_change_emits_an_alert_event_with_its_cost(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sent: list[dict[str, Any]] = []

    class Client:
        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read_flow_run(self, _id: str):  # type: ignore[no-untyped-def]
            return type("Run", (), {"tags": ["x"]})()

        def update_flow_run(self, _id: str, tags: list[str]) -> None:
            sent.append({"tags": tags})

    monkeypatch.setattr(outcome, "get_client", lambda sync_client: Client())
    monkeypatch.setattr(outcome, "emit_event", lambda **kw: sent.append(kw))
    report = {"status": "accepted", "change_id": 7, "ref": "a/b#1", "cost_usd": 2.5}
    outcome.announce(report, "team", "run-1", alert_usd=1.0)
    assert sent[0]["tags"] == ["outcome:accepted", "route:team", "x"]
    assert [e["event"] for e in sent[1:]] == [
        "mergemeter.change.accepted",
        "mergemeter.change.costly",
    ]
    assert sent[2]["payload"]["cost_usd"] == 2.5
    sent.clear()
    outcome.announce({**report, "cost_usd": 0.5}, "team", "run-1", alert_usd=1.0)
    assert [e["event"] for e in sent[1:]] == ["mergemeter.change.accepted"]


def test_shipped_automation_is_a_valid_prefect_automation() -> None:
    import uuid
    from pathlib import Path

    import yaml
    from prefect.events.schemas.automations import AutomationCore

    path = Path(__file__).parent.parent / "deployments" / "automations" / "costly-change.yaml"
    text = path.read_text().replace("NOTIFICATION_BLOCK_ID", str(uuid.uuid4()))
    [spec] = yaml.safe_load(text)["automations"]
    automation = AutomationCore.model_validate(spec)
    assert automation.trigger.expect == {"mergemeter.change.costly"}  # type: ignore[union-attr]
