"""Pricing beyond litellm's map: route price overrides with an effective date, free models,
and the rates for what is not tokens (test compute, human review, self-hosted GPU time,
flat-rate subscriptions).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from prefect.blocks.core import Block
from pydantic import BaseModel, Field


class PriceOverride(BaseModel):
    """A model's token prices from a date on (a provider's price change, a negotiated rate)."""

    model: str = Field(description="litellm model string the price applies to.")
    effective_from: date = Field(description="First UTC day the price is in force.")
    input_usd_per_mtok: float = Field(ge=0, description="USD per million uncached prompt tokens.")
    output_usd_per_mtok: float = Field(ge=0, description="USD per million completion tokens.")
    cache_read_usd_per_mtok: float | None = Field(
        default=None,
        ge=0,
        description="USD per million cached prompt tokens (default: input price).",
    )


class TokenPrice(BaseModel):
    """Prices per token in force for one call, and where they came from."""

    input: float
    output: float
    cache_read: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> float:
        uncached = max(prompt_tokens - cached_tokens, 0)
        return (
            uncached * self.input
            + cached_tokens * self.cache_read
            + completion_tokens * self.output
        )


def override_in_force(
    overrides: list[PriceOverride], model: str, at: datetime
) -> PriceOverride | None:
    """The override for ``model`` with the latest effective date on or before ``at``."""
    day = at.astimezone(UTC).date()
    candidates = [o for o in overrides if o.model == model and o.effective_from <= day]
    return max(candidates, key=lambda o: o.effective_from, default=None)


def override_price(override: PriceOverride) -> TokenPrice:
    cache_read = override.cache_read_usd_per_mtok
    return TokenPrice(
        input=override.input_usd_per_mtok / 1e6,
        output=override.output_usd_per_mtok / 1e6,
        cache_read=(cache_read if cache_read is not None else override.input_usd_per_mtok) / 1e6,
        source=f"route price from {override.effective_from.isoformat()}",
    )


class Subscription(BaseModel):
    """A flat-rate plan, amortised over the accepted changes of a report's window."""

    name: str = Field(description="Plan name, e.g. 'coding agent team plan'.")
    usd_per_month: float = Field(ge=0, description="Monthly fee in USD.")
    routes: list[str] | None = Field(
        default=None, description="Routes that use it (default: all routes)."
    )


class Pricing(Block):
    """Rates for the parts of a change's cost that are not tokens.

    Examples:
        ```python
        from blocks.pricing import Pricing

        pricing = Pricing.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "Cost Rates"
    _description = "Compute, review, GPU and subscription rates that complete a change's full cost."

    compute_usd_per_second: float = Field(
        default=0.008 / 60,
        ge=0,
        description="Test/CI compute, USD per second (default $0.008/min).",
    )
    review_usd_per_hour: float = Field(
        default=90.0, ge=0, description="Human review time, USD per hour."
    )
    gpu_usd_per_hour: dict[str, float] = Field(
        default_factory=dict,
        description="Self-hosted model -> USD per GPU hour, charged for the time it was busy.",
    )
    subscriptions: list[Subscription] = Field(
        default_factory=list, description="Flat-rate plans amortised over accepted changes."
    )
