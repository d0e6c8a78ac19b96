"""What the learned route mode believes about its models: a skill model fitted to ledger outcomes.

Each model has a *skill*, each (model, repository) pair a small offset to it, and each issue an
unknown *difficulty*; the chance that a model resolves an issue is ``sigmoid(skill + offset −
difficulty)`` (a Rasch / one-parameter item-response model). Difficulties are not estimated per
issue but integrated over a learned distribution on a fixed grid, so the model needs nothing but
the ledger's attempts: which models tried a change, in which repository, and whether the change's
last attempt passed.

The point of the model is the conditional chance: attempts that failed on *this* change are
evidence that it is hard, which lowers every model's chance on it, weak models' more than strong
ones'. That is what tells a router whether a third attempt is worth paying for. Pure Python, no
work at import time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

GRID: tuple[float, ...] = tuple(-6.0 + 0.5 * k for k in range(25))
"""The difficulty values an issue may take (logit scale)."""

SKILL_PRIOR_SD = 2.0
REPO_OFFSET_PRIOR_SD = 2.0
DIFFICULTY_PRIOR_SD = 2.0
DIFFICULTY_PRIOR_WEIGHT = 5.0  # pseudo-changes that keep the learned difficulty curve smooth
MAX_STEP = 2.0


@dataclass(frozen=True)
class ChangeOutcomes:
    """The attempts of one finished change, in order: (model, passed) each."""

    repo: str
    attempts: tuple[tuple[str, bool], ...]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _gaussian_weights(sd: float) -> list[float]:
    raw = [math.exp(-0.5 * (d / sd) ** 2) for d in GRID]
    total = sum(raw)
    return [w / total for w in raw]


@dataclass
class SkillModel:
    """Skills, per-repository offsets and the difficulty distribution, refitted from outcomes."""

    skill: dict[str, float] = field(default_factory=dict)
    offset: dict[tuple[str, str], float] = field(default_factory=dict)
    difficulty: list[float] = field(default_factory=lambda: _gaussian_weights(DIFFICULTY_PRIOR_SD))

    def curve(self, model: str, repo: str) -> list[float]:
        """Chance of passing at each grid difficulty."""
        level = self.skill.get(model, 0.0) + self.offset.get((model, repo), 0.0)
        return [_sigmoid(level - d) for d in GRID]

    def posterior(self, repo: str, attempts: Iterable[tuple[str, bool]]) -> list[float]:
        """Distribution of this change's difficulty after the given attempts."""
        weights = list(self.difficulty)
        for model, passed in attempts:
            for g, q in enumerate(self.curve(model, repo)):
                weights[g] *= q if passed else 1.0 - q
        total = sum(weights) or 1e-300
        return [w / total for w in weights]

    def chance(self, model: str, repo: str, failed: Sequence[str] = ()) -> float:
        """Chance that ``model`` passes a change in ``repo`` on which ``failed`` already failed."""
        weights = self.posterior(repo, ((m, False) for m in failed))
        return sum(w * q for w, q in zip(weights, self.curve(model, repo), strict=True))

    def refit(self, changes: Sequence[ChangeOutcomes], iterations: int = 1) -> None:
        """EM steps: the difficulty of each change is integrated out, skills take a Newton step."""
        for _ in range(iterations):
            self._em_step(changes)

    def _em_step(self, changes: Sequence[ChangeOutcomes]) -> None:
        curves: dict[tuple[str, str], list[float]] = {}
        grad: dict[str, float] = defaultdict(float)
        hess: dict[str, float] = defaultdict(float)
        grad_r: dict[tuple[str, str], float] = defaultdict(float)
        hess_r: dict[tuple[str, str], float] = defaultdict(float)
        base = _gaussian_weights(DIFFICULTY_PRIOR_SD)
        mass = [DIFFICULTY_PRIOR_WEIGHT * b for b in base]
        for change in changes:
            for model, _ in change.attempts:
                key = (model, change.repo)
                if key not in curves:
                    curves[key] = self.curve(model, change.repo)
            weights = list(self.difficulty)
            for model, passed in change.attempts:
                for g, q in enumerate(curves[(model, change.repo)]):
                    weights[g] *= q if passed else 1.0 - q
            total = sum(weights) or 1e-300
            weights = [w / total for w in weights]
            for g, w in enumerate(weights):
                mass[g] += w
            for model, passed in change.attempts:
                key = (model, change.repo)
                g_sum = h_sum = 0.0
                for w, q in zip(weights, curves[key], strict=True):
                    g_sum += w * ((1.0 if passed else 0.0) - q)
                    h_sum += w * q * (1.0 - q)
                grad[model] += g_sum
                hess[model] += h_sum
                grad_r[key] += g_sum
                hess_r[key] += h_sum
        self._newton_step(grad, hess, grad_r, hess_r)
        total_mass = sum(mass)
        self.difficulty = [m / total_mass for m in mass]

    def _newton_step(
        self,
        grad: dict[str, float],
        hess: dict[str, float],
        grad_r: dict[tuple[str, str], float],
        hess_r: dict[tuple[str, str], float],
    ) -> None:
        moved: dict[str, float] = {}
        for model in grad:
            level = self.skill.get(model, 0.0)
            g = grad[model] - level / SKILL_PRIOR_SD**2
            h = hess[model] + 1.0 / SKILL_PRIOR_SD**2
            moved[model] = max(-MAX_STEP, min(MAX_STEP, g / h))
            self.skill[model] = level + moved[model]
        for key in grad_r:
            model = key[0]
            offset = self.offset.get(key, 0.0)
            # The skill step already moved this pair's level; the offset corrects what remains.
            g = grad_r[key] - hess_r[key] * moved[model] - offset / REPO_OFFSET_PRIOR_SD**2
            h = hess_r[key] + 1.0 / REPO_OFFSET_PRIOR_SD**2
            self.offset[key] = offset + max(-MAX_STEP, min(MAX_STEP, g / h))
