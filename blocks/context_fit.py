"""Fitting a prompt into a context window when no candidate's window holds it as it is.

`trim_to_fit` measures with litellm's token counter (or one given), drops the oldest turns, then
cuts the middle of the longest user message; a system prompt that alone is too long is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

TRIM_MARKER = "\n\n[… middle trimmed to fit the model's context window …]\n\n"
TokenCounter = Callable[..., int]  # called as counter(model=..., messages=...), as litellm's


class ContextTooLong(ValueError):
    """The prompt cannot be trimmed to fit the window (the system prompt alone is too long)."""


def trim_to_fit(
    messages: Sequence[Mapping[str, Any]],
    model: str,
    window: int,
    max_tokens: int,
    counter: TokenCounter | None = None,
) -> list[dict[str, Any]]:
    """A copy of ``messages`` with ``counter(messages) + max_tokens ≤ window``.

    For when no candidate has a larger window. It drops the oldest non-system messages (never
    the last one, and so that the conversation still opens with a user turn), then cuts the middle
    of the longest user message, leaving `TRIM_MARKER` in its place. ``counter`` defaults to
    litellm's ``token_counter``. Raises `ContextTooLong` when the system prompt alone is too long.
    """
    count = counter or litellm_counter()
    budget = window - max_tokens
    kept = [dict(m) for m in messages]

    def fits(candidate: list[dict[str, Any]]) -> bool:
        return count(model=model, messages=candidate) <= budget

    if fits(kept):
        return kept
    system = [m for m in kept if m.get("role") == "system"]
    if not fits(system):
        tokens = count(model=model, messages=system)
        raise ContextTooLong(
            f"{model}: the system prompt alone is {tokens:,} tokens; with max_tokens "
            f"{max_tokens:,} it cannot fit a {window:,}-token window"
        )
    while not fits(kept) and _drop_oldest_turn(kept):
        pass
    if fits(kept):
        return kept
    return _trim_longest_user_message(kept, fits, model, window)


def litellm_counter() -> TokenCounter:
    from tasks import llm

    return llm._litellm().token_counter  # type: ignore[no-any-return]


def _drop_oldest_turn(messages: list[dict[str, Any]]) -> bool:
    """Drop the oldest non-system message before the last one, and any assistant or tool
    messages it leaves at the head of the conversation. False: nothing left to drop."""
    history = [i for i, m in enumerate(messages[:-1]) if m.get("role") != "system"]
    if not history:
        return False
    del messages[history[0]]
    while True:
        rest = [i for i, m in enumerate(messages[:-1]) if m.get("role") != "system"]
        if not rest or messages[rest[0]].get("role") == "user":
            return True
        del messages[rest[0]]


def _trim_longest_user_message(
    messages: list[dict[str, Any]],
    fits: Callable[[list[dict[str, Any]]], bool],
    model: str,
    window: int,
) -> list[dict[str, Any]]:
    """Cut the least from the middle of the longest user text so that ``messages`` fit."""
    users = [
        i
        for i, m in enumerate(messages)
        if m.get("role") == "user" and isinstance(m.get("content"), str)
    ]
    if not users:
        raise ContextTooLong(f"{model}: no user text to trim to fit a {window:,}-token window")
    index = max(users, key=lambda i: len(messages[i]["content"]))
    text = messages[index]["content"]

    def cut(amount: int) -> list[dict[str, Any]]:
        trimmed = list(messages)
        trimmed[index] = {**messages[index], "content": _cut_middle(text, amount)}
        return trimmed

    if not fits(cut(len(text))):
        raise ContextTooLong(
            f"{model}: even with the longest user message emptied the prompt does not fit a "
            f"{window:,}-token window"
        )
    fitting, too_little = len(text), 0  # invariant: cut(fitting) fits, cut(too_little) does not
    while fitting - too_little > 1:
        middle = (fitting + too_little) // 2
        if fits(cut(middle)):
            fitting = middle
        else:
            too_little = middle
    return cut(fitting)


def _cut_middle(text: str, amount: int) -> str:
    """``text`` without ``amount`` characters from its middle, marked by `TRIM_MARKER`."""
    keep = len(text) - amount
    head, tail = keep - keep // 2, keep // 2
    return text[:head] + TRIM_MARKER + text[len(text) - tail :]
