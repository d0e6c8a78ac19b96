"""The `replay` litellm provider: the offline model used by the demo and the tests.

Answers come from a YAML cassette keyed `<repo>#<issue>` -> step -> attempt. Usage is counted on
the real prompt and answer with litellm's token counter, and the call is priced as the named real
model (`replay/deepseek/deepseek-v4-flash` costs what DeepSeek V4 Flash would). Every figure it
produces is marked replay-priced in the ledger.
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROVIDER = "replay"


class CassetteMissing(LookupError):
    """The cassette has no answer for the key the pipeline asked for."""


@cache
def _load(path: str, mtime: float) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ValueError(f"cassette {path} must be a mapping of '<repo>#<issue>' keys")
    return data


def lookup(cassette: str, key: str) -> tuple[str, int]:
    """The recorded answer and cached prompt tokens for ``<repo>#<issue>/<step>/<attempt>``.

    An entry is the answer text, or a mapping ``{answer: str, cached_tokens: int}`` to replay a
    provider's prompt-cache hit.
    """
    path = Path(cassette)
    if not path.is_file():
        raise CassetteMissing(f"replay cassette {cassette} does not exist")
    issue, step, attempt = key.rsplit("/", 2)
    entry = _load(str(path), path.stat().st_mtime).get(issue, {}).get(step, {})
    answer = entry.get(int(attempt), entry.get(str(attempt)))
    if answer is None:
        raise CassetteMissing(f"replay cassette {cassette} has no answer for {key!r}")
    if isinstance(answer, dict):
        return str(answer["answer"]), int(answer.get("cached_tokens", 0))
    return str(answer), 0


def real_model(model: str) -> str:
    """`replay/deepseek/deepseek-v4-flash` -> `deepseek/deepseek-v4-flash`."""
    return model.removeprefix(f"{PROVIDER}/")


def register(litellm: Any, model: str) -> None:
    """Register the provider and price ``model`` as its real counterpart; unknown price raises."""
    from litellm import CustomLLM, ModelResponse
    from litellm.types.utils import PromptTokensDetailsWrapper, Usage

    real = real_model(model)
    if real not in litellm.model_cost:
        raise LookupError(f"replay model {model!r}: litellm's price map has no {real!r}")

    class ReplayLLM(CustomLLM):
        def completion(
            self, model: str, messages: list, *args: Any, **kwargs: Any
        ) -> ModelResponse:
            metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
            started = time.monotonic()
            answer, cached = lookup(metadata["replay_cassette"], metadata["replay_key"])
            priced_as = real_model(model)
            prompt = litellm.token_counter(model=priced_as, messages=messages)
            tokens = litellm.encode(model=priced_as, text=answer)
            limit = (kwargs.get("optional_params") or {}).get("max_tokens")
            finish = "stop"
            if limit is not None and len(tokens) > limit:  # a provider stops at max_tokens too
                tokens, finish = tokens[:limit], "length"
                answer = litellm.decode(model=priced_as, tokens=tokens)
            response = ModelResponse()
            response.choices[0].message.content = answer  # type: ignore[union-attr]
            response.choices[0].finish_reason = finish
            response.model = f"{PROVIDER}/{priced_as}"
            response.usage = Usage(  # type: ignore[attr-defined]
                prompt_tokens=prompt,
                completion_tokens=len(tokens),
                total_tokens=prompt + len(tokens),
                prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=min(cached, prompt)),
            )
            response._response_ms = (time.monotonic() - started) * 1000
            return response

    if not any(p.get("provider") == PROVIDER for p in litellm.custom_provider_map):
        litellm.custom_provider_map = [
            *litellm.custom_provider_map,
            {"provider": PROVIDER, "custom_handler": ReplayLLM()},
        ]
    key = f"{PROVIDER}/{real}"
    if key not in litellm.model_cost:
        litellm.register_model({key: {**litellm.model_cost[real], "litellm_provider": PROVIDER}})
