"""ModelRoute: which model plays which role (planner, coder, reviewer) — a "team".

A model is any litellm model string. `replay/<real model>` is the offline replay model: it
answers from the route's cassette and is priced as `<real model>` from litellm's price map.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import BaseModel, Field

from blocks.pricing import PriceOverride
from blocks.routing import Candidate, RoutePolicy
from tasks.routing_policy import RouteMode

ROLES = ("planner", "coder", "reviewer")


class ModelChoice(BaseModel):
    """One model for one role."""

    model: str = Field(description="litellm model string, e.g. deepseek/deepseek-v4-flash.")
    api_base: str | None = Field(
        default=None, description="Endpoint override (self-hosted models)."
    )


class UnknownRole(KeyError):
    """The route names no model for a role the pipeline asked for."""


class ModelRoute(Block):
    """A named assignment of models to roles.

    Examples:
        Load a saved route and see who codes:
        ```python
        from blocks.model_route import ModelRoute

        route = ModelRoute.load("BLOCK_NAME")
        route.for_role("coder").model
        ```
    """

    _block_type_name = "Model Route"
    _description = "Maps each pipeline role to a litellm model (and optional endpoint)."

    name: str = Field(description="Route (team) name, used to group costs in reports.")
    roles: dict[str, ModelChoice] = Field(
        default_factory=dict, description="Role name -> one model (simple routes)."
    )
    candidates: dict[str, list[Candidate]] = Field(
        default_factory=dict,
        description="Role name -> ordered candidates with tier, strength and window "
        "(blocks/routing.py); wins over `roles` for that role.",
    )
    policy: RoutePolicy = Field(default_factory=RoutePolicy, description="Routing policy settings.")
    coder_mode: RouteMode | None = Field(
        default=None,
        description="How each attempt's coder model is chosen: empty for the routing policy "
        "(cheapest adequate, escalating); or a route mode — single, cascade, or learned (reads "
        "the ledger of past changes; see tasks/routing_policy.py).",
    )
    cassette: str | None = Field(
        default=None, description="Cassette file answering for replay/ models (offline runs)."
    )
    prices: list[PriceOverride] = Field(
        default_factory=list,
        description="Price overrides with effective dates; win over litellm's price map.",
    )
    free_models: list[str] = Field(
        default_factory=list,
        description="Models declared free (e.g. self-hosted, costed by GPU time instead).",
    )

    def candidates_for(self, role: str) -> tuple[list[Candidate], RoutePolicy]:
        """The candidates for ``role`` and the policy to choose among them.

        A role given as one model in `roles` is one hosted candidate of full strength whose
        context window, when litellm does not know it, is left to the provider to enforce.
        """
        if role in self.candidates:
            return self.candidates[role], self.policy
        choice = self.for_role(role)
        single = Candidate(model=choice.model, api_base=choice.api_base, tier="hosted", strength=10)
        return [single], self.policy.model_copy(update={"require_known_window": False})

    def for_role(self, role: str) -> ModelChoice:
        try:
            return self.roles[role]
        except KeyError:
            raise UnknownRole(
                f"route {self.name!r} has no model for role {role!r}; "
                f"roles: {sorted({*self.roles, *self.candidates})}"
            ) from None


def premium_replay_route(cassette: str) -> ModelRoute:
    """A premium team, replayed: Claude Opus plans and codes, Claude Sonnet reviews."""
    return ModelRoute(
        name="replay-opus-team",
        roles={
            "planner": ModelChoice(model="replay/claude-opus-4-5"),
            "coder": ModelChoice(model="replay/claude-opus-4-5"),
            "reviewer": ModelChoice(model="replay/claude-sonnet-4-5"),
        },
        cassette=cassette,
    )


def replay_route(cassette: str) -> ModelRoute:
    """The demo's team, replayed: Claude Sonnet plans and reviews, DeepSeek V4 Flash codes."""
    return ModelRoute(
        name="replay-sonnet-plans-deepseek-codes",
        roles={
            "planner": ModelChoice(model="replay/claude-sonnet-4-5"),
            "coder": ModelChoice(model="replay/deepseek/deepseek-v4-flash"),
            "reviewer": ModelChoice(model="replay/claude-sonnet-4-5"),
        },
        cassette=cassette,
    )
