"""Deterministic in-process model providers for tests: they answer without a network and report
the usage a real provider would (prompt counted by litellm's counter, completion ≤ max_tokens).
"""

from __future__ import annotations

import re
from typing import Any

from blocks.model_route import ModelChoice, ModelRoute
from blocks.pricing import PriceOverride
from tasks.llm import _litellm


def register_sized_provider(name: str = "sized") -> None:
    """`<name>/<model>` answers with as many tokens as the last message's ``[answer:N]`` asks
    for, capped at ``max_tokens`` like a provider stops at its limit."""
    litellm = _litellm()
    from litellm import CustomLLM, ModelResponse
    from litellm.types.utils import Usage

    class Sized(CustomLLM):
        def completion(
            self, model: str, messages: list, *args: Any, **kwargs: Any
        ) -> ModelResponse:
            asked = re.search(r"\[answer:(\d+)\]", messages[-1]["content"])
            limit = (kwargs.get("optional_params") or {}).get("max_tokens") or 1_000_000
            completion = min(int(asked.group(1)) if asked else 10, limit)
            prompt = litellm.token_counter(model=f"{name}/{model}", messages=messages)
            response = ModelResponse()
            response.choices[0].message.content = "word " * completion  # type: ignore[union-attr]
            response.usage = Usage(  # type: ignore[attr-defined]
                prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
            )
            return response

    litellm.custom_provider_map = [
        *[p for p in litellm.custom_provider_map if p["provider"] != name],
        {"provider": name, "custom_handler": Sized()},
    ]


def priced_route(input_per_mtok: float, output_per_mtok: float, name: str = "sized") -> ModelRoute:
    """A one-model route whose price is a route override (the provider is not in litellm's map)."""
    from datetime import date

    model = f"{name}/m"
    return ModelRoute(
        name=f"route-{name}",
        roles={role: ModelChoice(model=model) for role in ("planner", "coder", "reviewer")},
        prices=[
            PriceOverride(
                model=model,
                effective_from=date(2000, 1, 1),
                input_usd_per_mtok=input_per_mtok,
                output_usd_per_mtok=output_per_mtok,
            )
        ],
    )
