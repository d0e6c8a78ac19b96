"""The routing policy (blocks/routing.py) and fitting a prompt to a window (blocks/context_fit.py);
litellm's Router over real HTTP is in test_litellm_router.py.

Pure tests price candidates through route price overrides and give windows explicitly, so they
never import litellm; the trimming tests count with litellm's token counter.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocks.context_fit import TRIM_MARKER, ContextTooLong, trim_to_fit
from blocks.pricing import PriceOverride, TokenPrice
from blocks.routing import (
    Candidate,
    NoCandidate,
    RoleCandidates,
    RoutePolicy,
    candidate_price,
    choose,
    choose_and_fit,
    litellm_context_window,
    required_strength_from_labels,
)

MESSAGES = [
    {"role": "system", "content": "You are a careful coding agent."},
    {"role": "user", "content": "Fix the crash in slugify on empty input."},
]


def candidate(
    name: str,
    strength: int,
    usd_in: float,
    usd_out: float,
    tier: str = "hosted",
    window: int | None = 128_000,
    model: str | None = None,
    **fields: Any,
) -> Candidate:
    model = model or f"provider/{name}"
    price = PriceOverride(
        model=model,
        effective_from=date(2020, 1, 1),
        input_usd_per_mtok=usd_in,
        output_usd_per_mtok=usd_out,
    )
    return Candidate(
        name=name,
        model=model,
        tier=tier,  # type: ignore[arg-type]
        strength=strength,
        context_window=window,
        prices=[price],
        **fields,
    )


FLASH = candidate("flash", strength=4, usd_in=0.1, usd_out=0.4)
MID = candidate("mid", strength=6, usd_in=1.0, usd_out=4.0)
QWEN = candidate("qwen", strength=7, usd_in=0.0, usd_out=0.0, tier="self-hosted", window=32_000)
PREMIUM = candidate("premium", strength=9, usd_in=3.0, usd_out=15.0)
TEAM = [PREMIUM, MID, FLASH, QWEN]


def labels(chosen: list[Candidate]) -> list[str]:
    return [c.label for c in chosen]


def route(role: str, team: list[Candidate], **call: Any) -> list[str]:
    """The labels `choose` picks for a call asking for 1,000 completion tokens by default."""
    call.setdefault("max_tokens", 1000)
    return labels(choose(role, team, **call))


# -- choosing -------------------------------------------------------------------------------


def test_the_cheapest_strong_enough_candidate_is_primary_and_the_rest_fall_back_by_cost() -> None:
    assert route("coder", [PREMIUM, MID, FLASH], required_strength=5) == ["mid", "premium"]


def test_order_is_by_this_calls_worst_case_cost_not_by_the_input_price_alone() -> None:
    cheap_in = candidate("cheap-in", strength=5, usd_in=0.5, usd_out=10.0)
    cheap_out = candidate("cheap-out", strength=5, usd_in=1.0, usd_out=2.0)
    few_prompt = choose("coder", [cheap_in, cheap_out], required_strength=5, max_tokens=4000)
    long_prompt = choose(
        "coder", [cheap_in, cheap_out], required_strength=5, prompt_tokens=90_000, max_tokens=10
    )
    assert labels(few_prompt) == ["cheap-out", "cheap-in"]
    assert labels(long_prompt) == ["cheap-in", "cheap-out"]


def test_equal_costs_keep_the_routes_order() -> None:
    first, second = (candidate(n, strength=5, usd_in=1, usd_out=1) for n in ("first", "second"))
    assert labels(choose("coder", [second, first], required_strength=5)) == ["second", "first"]


def test_each_failed_attempt_escalates_to_a_stronger_candidate_and_stays_at_the_strongest() -> None:
    hosted = [PREMIUM, MID, FLASH]
    primaries = [route("coder", hosted, required_strength=4, attempt=n)[0] for n in (1, 2, 3, 4)]
    assert primaries == ["flash", "mid", "premium", "premium"]
    # the free self-hosted qwen (7) is cheapest; after it fails only premium (9) is stronger
    primaries = [route("coder", TEAM, required_strength=4, attempt=n)[0] for n in (1, 2, 3)]
    assert primaries == ["qwen", "premium", "premium"]


def test_fallbacks_after_an_escalation_are_no_weaker_than_the_escalated_floor() -> None:
    chosen = route("coder", [PREMIUM, MID, FLASH], required_strength=4, attempt=2)
    assert chosen == ["mid", "premium"]


def test_without_escalation_a_retry_gets_the_same_cheapest_candidate() -> None:
    policy = RoutePolicy(escalate_after_failure=False)
    chosen = route("coder", [PREMIUM, MID, FLASH], required_strength=4, attempt=3, policy=policy)
    assert chosen[0] == "flash"


def test_max_fallbacks_limits_the_list() -> None:
    policy = RoutePolicy(max_fallbacks=1)
    assert route("coder", TEAM, required_strength=1, policy=policy) == ["qwen", "flash"]
    none = RoutePolicy(max_fallbacks=0)
    assert route("coder", TEAM, required_strength=1, policy=none) == ["qwen"]


def test_the_reviewer_never_gets_a_model_that_coded_the_change() -> None:
    chosen = route("reviewer", TEAM, required_strength=4, exclude_models=[QWEN.model])
    assert chosen == ["flash", "mid", "premium"]
    coder = route("coder", TEAM, required_strength=4, exclude_models=[QWEN.model])
    assert coder[0] == "flash"  # exclusions hold for any role


def test_the_reviewer_may_equal_the_coder_when_the_policy_allows() -> None:
    policy = RoutePolicy(reviewer_may_equal_coder=True)
    chosen = route(
        "reviewer", TEAM, required_strength=4, exclude_models=[QWEN.model], policy=policy
    )
    assert chosen[0] == "qwen"


def test_a_reviewer_with_only_the_coders_model_left_is_refused_with_the_reason() -> None:
    with pytest.raises(NoCandidate) as refused:
        choose("reviewer", [QWEN], required_strength=4, exclude_models=[QWEN.model])
    assert "qwen (coded the change under review)" in str(refused.value)
    assert refused.value.rejected == {"qwen": "coded the change under review"}


def test_a_sensitive_repository_only_gets_self_hosted_candidates() -> None:
    local_strong = candidate("local-strong", strength=9, usd_in=0, usd_out=0, tier="self-hosted")
    chosen = choose("coder", [*TEAM, local_strong], required_strength=4, sensitive=True)
    assert {c.tier for c in chosen} == {"self-hosted"}
    assert labels(chosen) == ["qwen", "local-strong"]
    escalated = route(
        "coder", [*TEAM, local_strong], required_strength=4, sensitive=True, attempt=2
    )
    assert escalated == ["local-strong"]


def test_a_sensitive_repository_with_no_fitting_self_hosted_candidate_is_told_why() -> None:
    with pytest.raises(NoCandidate) as refused:
        choose(
            "coder",
            TEAM,
            required_strength=7,
            sensitive=True,
            prompt_tokens=31_000,
            max_tokens=4000,
        )
    message = str(refused.value)
    assert message.startswith(
        "sensitive repository: no self-hosted candidate for role coder with strength ≥ 7 "
        "and a context window ≥ 35,000 tokens; excluded: "
    )
    assert "premium (hosted, and the repository is sensitive)" in message
    assert "flash (hosted, and the repository is sensitive, strength 4 < 7)" in message
    assert "qwen (context window 32,000 < 35,000 tokens)" in message


def test_a_prompt_too_large_for_the_cheap_model_goes_to_a_larger_window() -> None:
    small = candidate("small", strength=5, usd_in=0.1, usd_out=0.1, window=8_192)
    large = candidate("large", strength=5, usd_in=1.0, usd_out=1.0, window=200_000)
    short = choose("coder", [small, large], required_strength=5, prompt_tokens=1000, max_tokens=500)
    long = choose("coder", [small, large], required_strength=5, prompt_tokens=9000, max_tokens=500)
    assert labels(short) == ["small", "large"]
    assert labels(long) == ["large"]


def test_the_window_is_read_from_the_injected_model_info_when_not_set() -> None:
    unset = candidate("unset", strength=5, usd_in=0.1, usd_out=0.1, window=None)
    windows = {"provider/unset": 4096}
    fits = choose("coder", [unset], required_strength=5, max_tokens=4000, window_lookup=windows.get)
    assert labels(fits) == ["unset"]
    with pytest.raises(NoCandidate, match=r"unset \(context window 4,096 < 5,000 tokens\)"):
        choose("coder", [unset], required_strength=5, max_tokens=5000, window_lookup=windows.get)


def test_a_candidate_whose_window_nobody_knows_is_skipped_with_the_fix() -> None:
    unknown = candidate("unknown", strength=5, usd_in=0, usd_out=0, window=None)
    with pytest.raises(NoCandidate, match=r"context window unknown \(set context_window\)"):
        choose("coder", [unknown], required_strength=5, window_lookup=lambda model: None)


def test_an_injected_price_decides_the_order() -> None:
    prices = {"flash": 9.0, "mid": 1.0}

    def price_of(c: Candidate) -> TokenPrice:
        usd = prices[c.label] / 1e6
        return TokenPrice(input=usd, output=usd, cache_read=usd, source="test")

    assert route("coder", [FLASH, MID], required_strength=1, price_of=price_of) == ["mid", "flash"]


def test_an_empty_role_and_nonsense_arguments_are_refused() -> None:
    with pytest.raises(NoCandidate, match="the route lists no candidates for planner"):
        choose("planner", [], required_strength=3)
    with pytest.raises(ValueError, match="attempt"):
        choose("coder", TEAM, required_strength=3, attempt=0)
    with pytest.raises(ValueError, match="1..10"):
        choose("coder", TEAM, required_strength=11)


def test_labels_must_be_unique_within_a_role_and_prices_must_name_the_candidates_model() -> None:
    twin = Candidate(model=FLASH.model, tier="hosted", strength=4, api_base="http://other/v1")
    with pytest.raises(ValueError, match="appear twice"):
        RoleCandidates(role="coder", candidates=[twin, twin])
    stray = PriceOverride(
        model="other/model",
        effective_from=date(2020, 1, 1),
        input_usd_per_mtok=1,
        output_usd_per_mtok=1,
    )
    with pytest.raises(ValueError, match="price overrides for other models"):
        Candidate(model="provider/x", tier="hosted", strength=3, prices=[stray])


def test_an_api_key_is_never_shown_or_serialised_in_clear() -> None:
    keyed = candidate("keyed", strength=5, usd_in=1, usd_out=1, api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(keyed)
    assert "sk-very-secret" not in keyed.model_dump_json()
    assert "sk-very-secret" not in str(keyed.model_dump())


# -- prices and windows from litellm --------------------------------------------------------


def test_a_candidate_is_priced_by_its_override_then_declared_free_then_litellms_map() -> None:
    assert candidate_price(MID).input == pytest.approx(1.0 / 1e6)
    sonnet = Candidate(model="claude-sonnet-4-5", tier="hosted", strength=8)
    assert candidate_price(sonnet, free_models=["claude-sonnet-4-5"]).output == 0
    mapped = candidate_price(sonnet)
    assert (mapped.input, mapped.source) == (pytest.approx(3e-6), "litellm price map")
    replayed = Candidate(model="replay/claude-sonnet-4-5", tier="hosted", strength=8)
    assert candidate_price(replayed).input == pytest.approx(3e-6)


def test_an_unpriced_candidate_stops_the_choice_instead_of_costing_zero() -> None:
    from tasks.llm import UnknownPrice

    unpriced = Candidate(model="openai/nobody-prices-this", tier="self-hosted", strength=5)
    with pytest.raises(UnknownPrice, match="nobody-prices-this"):
        choose("coder", [unpriced], required_strength=5, window_lookup=lambda model: 8192)


def test_litellm_knows_the_window_of_mapped_and_replayed_models_but_not_of_others() -> None:
    assert litellm_context_window("claude-sonnet-4-5") == 200_000
    assert litellm_context_window("replay/claude-sonnet-4-5") == 200_000
    assert litellm_context_window("openai/nobody-knows-this") is None


# -- strength from labels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issue_labels", "expected"),
    [
        ([], 5),
        (["agent-ready"], 5),
        (["strength:7"], 7),
        (["Strength: 2"], 2),
        (["hard"], 8),
        (["easy", "agent-ready"], 3),
        (["easy", "strength:9", "hard"], 9),
    ],
)
def test_required_strength_comes_from_the_issues_labels(
    issue_labels: list[str], expected: int
) -> None:
    assert required_strength_from_labels(issue_labels, default=5) == expected


def test_named_strength_labels_can_be_configured_and_a_bad_strength_label_is_refused() -> None:
    assert required_strength_from_labels(["gnarly"], default=5, named={"gnarly": 10}) == 10
    with pytest.raises(ValueError, match="strength:N with N from 1 to 10"):
        required_strength_from_labels(["strength:11"], default=5)
    with pytest.raises(ValueError, match="strength:N"):
        required_strength_from_labels(["strength:high"], default=5)


# -- trimming to fit ------------------------------------------------------------------------


def test_a_long_single_prompt_is_cut_in_its_middle_to_fit_per_litellms_counter(
    litellm: Any,
) -> None:
    body = " ".join(f"line{n} of the diff" for n in range(3000))
    messages = [MESSAGES[0], {"role": "user", "content": f"TASK START {body} TASK END"}]
    model, window, max_tokens = "gpt-4o", 4000, 1000
    assert litellm.token_counter(model=model, messages=messages) + max_tokens > window

    trimmed = trim_to_fit(messages, model, window, max_tokens)

    assert litellm.token_counter(model=model, messages=trimmed) + max_tokens <= window
    assert litellm.token_counter(model=model, messages=trimmed) + max_tokens > window - 50
    text = trimmed[1]["content"]
    assert text.startswith("TASK START") and text.endswith("TASK END") and TRIM_MARKER in text
    assert trimmed[0] == MESSAGES[0]
    assert messages[1]["content"].endswith("TASK END") and TRIM_MARKER not in messages[1]["content"]


def test_a_prompt_that_fits_is_returned_unchanged(litellm: Any) -> None:
    assert trim_to_fit(MESSAGES, "gpt-4o", 4000, 1000) == MESSAGES


def test_the_oldest_turns_go_first_and_the_conversation_still_opens_with_a_user(
    litellm: Any,
) -> None:
    old = "an old exchange about something else " * 60
    messages = [
        MESSAGES[0],
        {"role": "user", "content": f"first question {old}"},
        {"role": "assistant", "content": f"first answer {old}"},
        {"role": "user", "content": f"second question {old}"},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": "the current request"},
    ]
    trimmed = trim_to_fit(messages, "gpt-4o", window=1200, max_tokens=500)
    assert [m["role"] for m in trimmed] == ["system", "user", "assistant", "user"]
    assert trimmed[1]["content"].startswith("second question")
    assert trimmed[-1] == messages[-1]
    assert litellm.token_counter(model="gpt-4o", messages=trimmed) + 500 <= 1200


def test_a_system_prompt_too_long_for_the_window_cannot_be_trimmed(litellm: Any) -> None:
    system = {"role": "system", "content": "rule " * 5000}
    with pytest.raises(ContextTooLong, match="the system prompt alone is"):
        trim_to_fit([system, MESSAGES[1]], "gpt-4o", window=4000, max_tokens=500)


def words(model: str, messages: list[dict[str, Any]]) -> int:
    """A deterministic stand-in tokenizer: one token per word, one per message."""
    return sum(1 + len(str(m.get("content", "")).split()) for m in messages)


_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant"]),
        "content": st.lists(st.sampled_from(["fix", "the", "bug", "in", "x"]), max_size=60).map(
            " ".join
        ),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    system_words=st.integers(0, 30),
    history=st.lists(_message, max_size=6),
    last_words=st.integers(0, 200),
    window=st.integers(20, 300),
    max_tokens=st.integers(0, 40),
)
def test_trimming_always_fits_keeps_the_system_prompt_or_says_why(
    system_words: int, history: list[dict[str, str]], last_words: int, window: int, max_tokens: int
) -> None:
    system = {"role": "system", "content": "rule " * system_words}
    last = {"role": "user", "content": "ask " * last_words}
    messages = [system, *history, last]
    try:
        trimmed = trim_to_fit(messages, "any", window, max_tokens, counter=words)
    except ContextTooLong:  # only when even the system prompt and an emptied request are too long
        emptied = [system, {"role": "user", "content": TRIM_MARKER}]
        assert words("any", emptied) + max_tokens > window
        return
    assert words("any", trimmed) + max_tokens <= window
    assert trimmed[0] == system
    assert trimmed[-1]["role"] == "user"


def test_choose_and_fit_sends_a_prompt_that_fits_as_it_is() -> None:
    small = candidate("small", strength=5, usd_in=0.1, usd_out=0.1, window=100)
    routed = choose_and_fit(
        "coder", [small], MESSAGES, max_tokens=20, counter=words, required_strength=5
    )
    assert (labels(routed.candidates), routed.trimmed) == (["small"], False)
    assert routed.messages == MESSAGES and routed.prompt_tokens == words("", MESSAGES)


def test_choose_and_fit_trims_for_the_widest_window_when_no_window_holds_the_prompt() -> None:
    small = candidate("small", strength=5, usd_in=0.1, usd_out=0.1, window=100)
    wide = candidate("wide", strength=5, usd_in=1.0, usd_out=1.0, window=300)
    messages = [MESSAGES[0], {"role": "user", "content": "word " * 1000}]
    routed = choose_and_fit(
        "coder", [small, wide], messages, max_tokens=50, counter=words, required_strength=5
    )
    assert (labels(routed.candidates), routed.trimmed) == (["wide"], True)
    assert 240 < routed.prompt_tokens <= 300 - 50
    assert TRIM_MARKER in routed.messages[1]["content"]


def test_choose_and_fit_does_not_trim_around_a_refusal_that_is_not_about_length() -> None:
    messages = [MESSAGES[0], {"role": "user", "content": "word " * 1000}]
    with pytest.raises(NoCandidate, match="sensitive repository") as refused:
        choose_and_fit(
            "coder",
            [PREMIUM],
            messages,
            max_tokens=50,
            counter=words,
            required_strength=5,
            sensitive=True,
        )
    assert "hosted, and the repository is sensitive" in str(refused.value)


def test_an_unknown_window_may_be_let_through_to_the_servers_own_check() -> None:
    unknown = candidate("unknown", strength=5, usd_in=0, usd_out=0, window=None)
    policy = RoutePolicy(require_known_window=False)
    chosen = route(
        "coder", [unknown], required_strength=5, policy=policy, window_lookup=lambda m: None
    )
    assert chosen == ["unknown"]
