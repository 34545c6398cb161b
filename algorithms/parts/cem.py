"""Cross-entropy method (CEM) planner of PETS (Chua et al. 2018, Sec. 5 and Appendix;
kchua/handful-of-trials `dmbrl/misc/optimizers/cem.py` and `dmbrl/controllers/MPC.py`).

Per planned action: `iterations` rounds of sampling `population` action sequences [H, A]
from a truncated normal (+-2 std, the std shrunk so that mean +- 2 std stays inside the
action bounds: every sample is in bounds), scoring them with the objective, and moving the
mean / variance towards the `elites` best with smoothing `alpha` (new = alpha * old +
(1 - alpha) * elite statistic). Stops early when every variance is below `epsilon`
(handful-of-trials: 1e-3). Returns the smoothed elite mean; the MPC executes its first
action and warm-starts the next plan with the rest shifted by one step, the last step
filled with the middle of the action bounds (handful-of-trials fills zeros: the same for
symmetric bounds). The variance restarts at (ub - lb)^2 / 16 for every plan.

Objectives are returns (higher is better). A NaN return ranks worst (handful-of-trials
turns a NaN cost into 1e6; mbrl-lib's -1e-10 replacement would rank a diverged sequence
near the top of any negative-return task: not copied).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Objective = Callable[[Tensor], Tensor]  # action sequences [N, H, A] -> returns [N]


@dataclass(frozen=True)
class CEMConfig:
    """CEM hyperparameters (handful-of-trials OPT_CFG["CEM"] of halfcheetah and pusher)."""

    population: int = 500  # action sequences sampled per iteration
    elites: int = 50  # best sequences that define the next mean / variance
    iterations: int = 5  # CEM rounds per planned action (max_iters)
    alpha: float = 0.1  # smoothing: weight of the previous mean / variance
    epsilon: float = 1e-3  # stop when every variance is below this (handful-of-trials)

    def __post_init__(self) -> None:
        if self.population < 1 or self.iterations < 1:
            raise ValueError(
                f"cem.population and cem.iterations must be >= 1, got "
                f"{self.population}, {self.iterations}"
            )
        if not 1 <= self.elites <= self.population:
            raise ValueError(
                f"cem.elites must be in [1, population={self.population}], got {self.elites}"
            )
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"cem.alpha must be in [0, 1), got {self.alpha}")
        if not self.epsilon >= 0:
            raise ValueError(f"cem.epsilon must be >= 0, got {self.epsilon}")


# Standard normal CDF at -2 and +2: the truncation of handful-of-trials' truncnorm(-2, 2).
_PHI_LO, _PHI_HI = 0.5 * math.erfc(2 / math.sqrt(2)), 0.5 * math.erfc(-2 / math.sqrt(2))


def truncated_normal(shape: tuple[int, ...], gen: torch.Generator, device) -> Tensor:
    """Standard normal truncated to [-2, 2] by the inverse CDF: one uniform per sample."""
    u = torch.empty(shape, device=device).uniform_(_PHI_LO, _PHI_HI, generator=gen)
    return torch.special.ndtri(u).clamp_(-2.0, 2.0)  # clamp: float rounding at the ends


def cem(
    objective: Objective,
    mean: Tensor,
    var: Tensor,
    lb: Tensor,
    ub: Tensor,
    cfg: CEMConfig,
    gen: torch.Generator,
) -> Tensor:
    """Maximise `objective` over action sequences: mean, var [H, A] initial distribution,
    lb, ub [A] action bounds. Returns the final smoothed elite mean [H, A]."""
    for _ in range(cfg.iterations):
        if float(var.max()) <= cfg.epsilon:
            break
        # Shrink the std so that mean +- 2 std stays inside the bounds (handful-of-trials).
        bound = torch.minimum((mean - lb) / 2, (ub - mean) / 2).square()  # [H, A]
        std = torch.minimum(bound, var).sqrt()  # [H, A]
        noise = truncated_normal((cfg.population, *mean.shape), gen, mean.device)  # [N, H, A]
        samples = noise.mul_(std).add_(mean)  # [N, H, A]
        returns = objective(samples)  # [N]
        returns = torch.where(torch.isnan(returns), -math.inf, returns)  # NaN ranks worst
        elites = samples[torch.topk(returns, cfg.elites, sorted=False).indices]  # [K, H, A]
        mean = cfg.alpha * mean + (1 - cfg.alpha) * elites.mean(0)
        var = cfg.alpha * var + (1 - cfg.alpha) * elites.var(0, correction=0)
    return mean


class CEMPlanner:
    """Model-predictive control with CEM and a warm start (handful-of-trials `MPC.act`).

    `act(objective, gen)` plans [H, A], keeps the plan shifted by one step for the next
    call and returns the first action [A]; `reset()` (start of an episode) forgets it."""

    def __init__(self, horizon: int, lb, ub, cfg: CEMConfig, device) -> None:
        self.cfg, self.horizon = cfg, horizon
        self.lb = torch.as_tensor(lb, dtype=torch.float32, device=device)  # [A]
        self.ub = torch.as_tensor(ub, dtype=torch.float32, device=device)  # [A]
        self.mid = (self.lb + self.ub) / 2  # [A]
        self.init_var = ((self.ub - self.lb).square() / 16).expand(horizon, -1)  # [H, A]
        self.prev = self.mid.expand(horizon, -1).clone()  # [H, A] warm start

    def reset(self) -> None:
        self.prev = self.mid.expand(self.horizon, -1).clone()

    def plan(self, objective: Objective, gen: torch.Generator) -> Tensor:
        """The full plan [H, A] from the current warm start (does not shift it)."""
        return cem(objective, self.prev, self.init_var, self.lb, self.ub, self.cfg, gen)

    def act(self, objective: Objective, gen: torch.Generator) -> Tensor:
        sol = self.plan(objective, gen)  # [H, A]
        self.prev = torch.cat([sol[1:], self.mid.unsqueeze(0)])  # shift by one step
        return sol[0]
