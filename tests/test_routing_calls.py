"""Routing through the metered call, over real HTTP to OpenAI-compatible stand-ins: fallbacks are
recorded per request, sensitive code never reaches a hosted model, long prompts go where they fit."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from blocks.ledger import Ledger
from blocks.model_route import ModelRoute
from blocks.pricing import PriceOverride
from blocks.routing import Candidate, NoCandidate, RoutePolicy
from tasks.llm import ProviderError, complete
from tests.standins import OpenAIStandIn

FAST = RoutePolicy(num_retries=0, timeout_seconds=2)


def candidate(server: OpenAIStandIn, model_id: str, tier: str, strength: int = 5, price: float = 1.0, window: int = 8192) -> Candidate:  # fmt: skip
    model = f"openai/{model_id}"
    return Candidate(
        model=model, api_base=server.api_base, api_key="sk-test", tier=tier, strength=strength,  # type: ignore[arg-type]
        context_window=window, name=model_id,
        prices=[PriceOverride(model=model, effective_from=date(2000, 1, 1),
                              input_usd_per_mtok=price, output_usd_per_mtok=price * 4)],
    )  # fmt: skip


@pytest.fixture
def servers() -> Iterator[tuple[OpenAIStandIn, OpenAIStandIn]]:
    with (
        OpenAIStandIn(
            name="cheap", model_ids=("cheap",), script=lambda body: "cheap answer"
        ) as cheap,
        OpenAIStandIn(
            name="backup", model_ids=("backup",), script=lambda body: "backup answer"
        ) as backup,
    ):
        yield cheap, backup


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")


def _call(ledger: Ledger, route: ModelRoute, role: str = "coder", **kw: Any) -> str:
    change = ledger.start_change("a/b", 1, "t", route.name, None, "default", "sha")
    kw.setdefault("messages", [{"role": "user", "content": "fix the bug please"}])
    return complete(
        ledger=ledger, route=route, change_id=change.id, step=kw.pop("step", "implement"),  # type: ignore[arg-type]
        attempt=1, role=role, replay_key="-", max_tokens=64, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("status", [429, 500, 503])
def test_provider_error_falls_back_and_each_request_is_a_ledger_row(
    servers, ledger: Ledger, status: int
) -> None:  # type: ignore[no-untyped-def]
    cheap, backup = servers
    cheap.fail_next(status=status, times=5)
    route = ModelRoute(
        name="team",
        candidates={"coder": [candidate(cheap, "cheap", "hosted", price=1), candidate(backup, "backup", "hosted", price=3)]},
        policy=FAST,
    )  # fmt: skip
    assert _call(ledger, route) == "backup answer"
    failed, answered = ledger.calls()
    assert (
        failed.model == "openai/cheap" and not failed.ok and failed.cost_usd == 0 and failed.error
    )
    assert answered.model == "openai/backup" and answered.ok
    assert answered.cost_usd == pytest.approx(
        answered.prompt_tokens * 3e-6 + answered.completion_tokens * 12e-6
    )
    assert (failed.call_index, answered.call_index) == (0, 1)


def test_a_timeout_falls_back(servers, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    cheap, backup = servers
    cheap.slow_next(seconds=5)
    route = ModelRoute(
        name="team",
        candidates={"coder": [candidate(cheap, "cheap", "hosted", price=1), candidate(backup, "backup", "hosted", price=3)]},
        policy=RoutePolicy(num_retries=0, timeout_seconds=1),
    )  # fmt: skip
    assert _call(ledger, route) == "backup answer"
    assert "Timeout" in ledger.calls()[0].error


def test_bad_credentials_are_not_retried_later(ledger: Ledger) -> None:
    with OpenAIStandIn(model_ids=("only",), api_key="right-key") as server:
        route = ModelRoute(
            name="team", candidates={"coder": [candidate(server, "only", "hosted")]}, policy=FAST
        )
        with pytest.raises(ProviderError) as failure:
            _call(ledger, route)
        assert not failure.value.transient, "a Prefect retry would not fix a wrong key"
        assert server.request_count == 1


def test_sensitive_code_never_reaches_a_hosted_model(servers, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    hosted, own = servers
    route = ModelRoute(
        name="team",
        candidates={"coder": [candidate(hosted, "cheap", "hosted", price=0.1), candidate(own, "backup", "self-hosted", price=5)]},
        policy=FAST,
    )  # fmt: skip
    assert _call(ledger, route, sensitive=True) == "backup answer"
    assert hosted.request_count == 0
    route.candidates["coder"] = route.candidates["coder"][:1]
    with pytest.raises(NoCandidate, match="sensitive repository: no self-hosted candidate"):
        _call(ledger, route, sensitive=True)
    assert hosted.request_count == 0


def test_a_prompt_too_long_for_the_cheap_model_goes_to_the_larger_window_before_sending(
    servers, ledger: Ledger
) -> None:  # type: ignore[no-untyped-def]
    small, large = servers
    route = ModelRoute(
        name="team",
        candidates={"coder": [candidate(small, "cheap", "hosted", price=1, window=500),
                              candidate(large, "backup", "hosted", price=3, window=100_000)]},
        policy=FAST,
    )  # fmt: skip
    long_prompt = [{"role": "user", "content": "word " * 2000}]
    assert _call(ledger, route, messages=long_prompt) == "backup answer"
    assert small.request_count == 0


def test_the_reviewer_is_not_the_model_that_coded(servers, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    cheap, backup = servers
    team = [
        candidate(cheap, "cheap", "hosted", price=1),
        candidate(backup, "backup", "hosted", price=3),
    ]
    route = ModelRoute(name="team", candidates={"coder": team, "reviewer": team}, policy=FAST)
    change = ledger.start_change("a/b", 1, "t", route.name, None, "default", "sha")
    common = {
        "ledger": ledger,
        "route": route,
        "change_id": change.id,
        "attempt": 1,
        "replay_key": "-",
        "max_tokens": 64,
    }
    message = [{"role": "user", "content": "x"}]
    assert complete(step="implement", role="coder", messages=message, **common) == "cheap answer"  # type: ignore[arg-type]
    assert complete(step="review", role="reviewer", messages=message, **common) == "backup answer"  # type: ignore[arg-type]


def _team_answers(body: dict[str, Any]) -> str:
    """A self-hosted model that resolves sample issue #1 (same answers as the demo's cassette)."""
    import yaml

    from mergemeter.sample import SAMPLE_CASSETTE

    recorded = yaml.safe_load(SAMPLE_CASSETTE.read_text())["sample/textkit#1"]
    system = body["messages"][0]["content"]
    step = (
        "plan"
        if system.startswith("You plan")
        else "review"
        if system.startswith("You review")
        else "implement"
    )
    return recorded[step][1]


def test_a_sensitive_repository_is_resolved_by_self_hosted_models_only(
    prefect_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from blocks.local_forge import LocalForge
    from flows.resolve import resolve_issue
    from mergemeter.sample import SAMPLE_REPO

    forge = LocalForge(root=str(tmp_path / "forge"))
    forge.create_repository("acme/secret", SAMPLE_REPO, sensitive=True)
    forge.add_issue(
        "acme/secret",
        "slugify crashes on empty input",
        "slugify('') raises IndexError",
        ["agent-ready"],
    )
    ledger = Ledger(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    with (
        OpenAIStandIn(
            name="hosted", model_ids=("hosted",), script=_team_answers, context_window=200_000
        ) as hosted,
        OpenAIStandIn(
            name="on-prem", model_ids=("on-prem",), script=_team_answers, context_window=200_000
        ) as own,
    ):
        team = [candidate(hosted, "hosted", "hosted", price=0.1, window=200_000),
                candidate(own, "on-prem", "self-hosted", price=2, window=200_000)]  # fmt: skip
        route = ModelRoute(
            name="private-team",
            candidates={"planner": team, "coder": team, "reviewer": team},
            policy=FAST.model_copy(update={"reviewer_may_equal_coder": True}),
        )
        report = resolve_issue(
            repo="acme/secret", number=1, forge=forge, route=route, ledger=ledger
        )
        assert report.status == "accepted", report.reason
        assert hosted.request_count == 0, "the hosted model received nothing"
        assert own.request_count == 3
    assert {c.model for c in ledger.calls()} == {"openai/on-prem"}


def test_a_rate_limit_that_clears_is_retried_on_the_same_candidate_with_backoff(
    servers, ledger: Ledger
) -> None:  # type: ignore[no-untyped-def]
    cheap, backup = servers
    cheap.fail_next(status=429, times=1, retry_after=1)
    route = ModelRoute(
        name="team",
        candidates={"coder": [candidate(cheap, "cheap", "hosted", price=1), candidate(backup, "backup", "hosted", price=3)]},
        policy=RoutePolicy(num_retries=2, timeout_seconds=5),
    )  # fmt: skip
    assert _call(ledger, route) == "cheap answer"
    assert cheap.request_count == 2 and backup.request_count == 0
    [row] = ledger.calls()
    assert row.ok and row.model == "openai/cheap" and row.latency_ms >= 900, (
        "waited out retry-after"
    )
