"""Per-transition weights from the critic (and the model): the prioritised-replay schemes
the PMAC paper compares with in Sec. 5.3 / Fig. 3g/h, applied, as it says, to the model's
training data and the rollout start states (docs/ambiguities.md #25-#27).

- PER (Schaul et al. 2016, "Prioritized Experience Replay", proportional variant, Sec.
  3.3-3.4 and Alg. 1): priority p = |TD error| + eps, drawn with P(i) = p_i^a / sum p^a,
  a = 0.6; importance weights w_i = (N P(i))^-b / max w, b annealed 0.4 -> 1 over
  training; a new transition enters with the largest priority so far (1 at the start).
- MaPER (Oh et al. 2022, "Model-augmented Prioritized Experience Replay"; its MBPO code,
  `sac/sac.py` and `main_mbpo.py` in the public copy h-yamani/RD-PER-baselines MAPER/MBPO):
  priority = squared TD error + squared reward error + squared next-state error (summed,
  unweighted, as the code's `priorities`), a = 0.5, b = 1 (`alpha_for_PER`,
  `beta_for_PER`); its model errors are those of the critic's model heads, ours those of
  the dynamics ensemble (ledger #26).
- RECALL (Goyal et al. 2018, "Recall Traces", as PMAC Sec. 5.3 implements it): the top 25%
  of the buffer by Q value, uniformly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PriorityConfig:
    """Proportional prioritisation (Schaul et al. 2016 Sec. 3.3-3.4)."""

    exponent: float  # a: P(i) ~ p_i^a (0 = uniform)
    beta_start: float  # b of the importance weights at the first model training ...
    beta_end: float = 1.0  # ... annealed linearly to this at the last step
    eps: float = 1e-6  # added to every refreshed priority so none is zero

    def __post_init__(self) -> None:
        if not self.exponent >= 0.0 or not self.eps > 0.0:
            raise ValueError(
                f"priority exponent must be >= 0 and eps > 0, got {self.exponent}, {self.eps}"
            )
        if not (0.0 <= self.beta_start <= 1.0 and 0.0 <= self.beta_end <= 1.0):
            raise ValueError(
                f"priority beta_start and beta_end must be in [0, 1], got {self.beta_start}, "
                f"{self.beta_end}"
            )


def per_config() -> PriorityConfig:
    """Schaul et al. 2016, proportional variant: a = 0.6, b 0.4 -> 1 (their Atari values);
    eps is not given there: ours."""
    return PriorityConfig(exponent=0.6, beta_start=0.4)


def maper_config() -> PriorityConfig:
    """MaPER's MBPO code: `alpha_for_PER` 0.5, `beta_for_PER` 1.0 (its annealing then stays
    at 1), priorities + 1e-9 (`ReplayMemory.eps`)."""
    return PriorityConfig(exponent=0.5, beta_start=1.0, eps=1e-9)


@dataclass(frozen=True)
class RecallConfig:
    """RECALL as the PMAC paper implements it (Sec. 5.3)."""

    top_fraction: float = 0.25  # PMAC Sec. 5.3: "the top 25% highest Q value samples"

    def __post_init__(self) -> None:
        if not 0.0 < self.top_fraction <= 1.0:
            raise ValueError(f"recall.top_fraction must be in (0, 1], got {self.top_fraction}")


def sampling_probabilities(priority: Tensor, exponent: float) -> Tensor:
    """P(i) = p_i^a / sum_k p_k^a for priorities [N] > 0 (float64)."""
    scaled = priority.to(torch.float64).pow(exponent)
    return scaled / scaled.sum()


def importance_weights(probs: Tensor, beta: float) -> Tensor:
    """w_i = (N P(i))^-b / max_k w_k for sampling probabilities [N] (Schaul et al. Sec.
    3.4: normalised by the largest weight so they only scale the loss down)."""
    w = (probs.numel() * probs).pow(-beta)
    return w / w.max()


def annealed_beta(t: int, cfg: PriorityConfig, first: int, last: int) -> float:
    """b at env step t: beta_start at step `first` (the first model training), linear to
    beta_end at step `last` (the run's budget)."""
    frac = min(max((t - first) / max(last - first, 1), 0.0), 1.0)
    return cfg.beta_start + frac * (cfg.beta_end - cfg.beta_start)


def top_fraction_probabilities(q: Tensor, fraction: float) -> Tensor:
    """Uniform probabilities over the ceil(fraction x N) transitions with the largest Q
    values [N], zero elsewhere (float64)."""
    k = max(1, math.ceil(fraction * q.numel()))
    probs = torch.zeros(q.numel(), dtype=torch.float64, device=q.device)
    probs[torch.topk(q, k, sorted=False).indices] = 1.0 / k
    return probs


def last_occurrence(idx: Tensor) -> Tensor:
    """Mask [n] of the last occurrence of each value of idx [n], so an assignment
    `x[idx[mask]] = v[mask]` is deterministic when a transition was replayed twice (the
    later TD error wins, as sequential PER updates would leave it)."""
    order = torch.sort(idx, stable=True).indices  # equal values stay in replay order
    sorted_idx = idx[order]
    last = torch.ones_like(sorted_idx, dtype=torch.bool)
    last[:-1] = sorted_idx[1:] != sorted_idx[:-1]
    mask = torch.zeros_like(last)
    mask[order] = last
    return mask
