"""PDML's policy-distance weights: the released code of the ICML 2023 version of PMAC
(si0wang/PDML, `sac/tvd.py`, `sac/replay_memory.py` `update_tv_weights`, `main_pdml.py`),
which weights each historical policy's segment by 1 / TV(pi_segment, pi_current) instead
of by its age (PMAC Eq. 4, `algorithms.pmac`).

The release, read for its rules (docs/ambiguities.md #24):
- TV is bounded by Pinsker's inequality, TV <= sqrt(KL / 2), with KL(pi_current || pi_old)
  between the two policies' pre-tanh diagonal Gaussians at a state, averaged over states;
- per-transition weights: each older policy segment gets (1/TV) / sum(1/TV); the warm-up
  transitions 0.05 x the oldest segment's weight; the newest segment (whose policy is
  the current one, TV 0) max(max_rate / (1 - max_rate) x (warm-up weight + the others'
  weights), the largest other weight), max_rate = 0.02 (`--max_rate`);
- uniform weights until the buffer holds 6,000 transitions, i.e. 4 segments of 250 after
  the 5,000-step warm-up.
Ours where it is silent or cannot be followed on a CPU (#24): a past policy is represented
by the action distribution it had at its own states when it acted (stored per transition),
so each segment's TV is averaged over `states` evenly spaced states of that segment (the
release evaluates every stored policy snapshot on every buffer state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


@dataclass(frozen=True)
class PolicyDistanceConfig:
    """PDML hyperparameters (si0wang/PDML; `states` and `covariance` are ours, ledger #24)."""

    max_rate: float = 0.02  # main_pdml.py --max_rate: the newest segment's share rule
    warmup_factor: float = 0.05  # update_tv_weights: warm-up weight = 0.05 x the oldest's
    # TV weights from this many policy segments on (main_pdml.py: len(env_pool) >= 6000 =
    # the 5,000 warm-up steps + 4 x 250); uniform before.
    start_segments: int = 4
    states: int = 2048  # states per TV evaluation, spread evenly over the older segments
    # "variance": KL of N(mean, std^2); "std": the release passes exp(log_std) where its
    # formula takes the covariance diagonal (sac/tvd.py called from main_pdml.calculate_tvd).
    covariance: Literal["variance", "std"] = "variance"

    def __post_init__(self) -> None:
        if not 0.0 < self.max_rate < 1.0:
            raise ValueError(f"policy_distance.max_rate must be in (0, 1), got {self.max_rate}")
        if not self.warmup_factor >= 0.0:
            raise ValueError(
                f"policy_distance.warmup_factor must be >= 0, got {self.warmup_factor}"
            )
        if self.start_segments < 2 or self.states < 1:
            raise ValueError(
                "policy_distance.start_segments must be >= 2 and states >= 1, got "
                f"{self.start_segments}, {self.states}"
            )


def gaussian_tv_bound(
    mean_p: Tensor,
    log_std_p: Tensor,
    mean_q: Tensor,
    log_std_q: Tensor,
    covariance: Literal["variance", "std"] = "variance",
) -> Tensor:
    """Pinsker's bound sqrt(KL(p || q) / 2) on TV(p, q) per row, for diagonal Gaussians
    given by means and log stds [B, A] -> [B]. `covariance="std"` takes exp(log_std) as
    the covariance diagonal, as the release does."""
    scale = 2.0 if covariance == "variance" else 1.0
    log_var_p, log_var_q = scale * log_std_p, scale * log_std_q  # [B, A]
    ratio = torch.exp(log_var_p - log_var_q)  # var_p / var_q
    shift = (mean_p - mean_q).square() * torch.exp(-log_var_q)  # (mu_p - mu_q)^2 / var_q
    kl = 0.5 * (log_var_q - log_var_p + ratio + shift - 1.0).sum(-1)  # [B]
    return torch.sqrt(kl.clamp(min=0.0) / 2.0)


def segment_weights(tv: Tensor, max_rate: float, warmup_factor: float) -> Tensor:
    """Per-transition weights [K + 2] of the warm-up, the K older policy segments (oldest
    first, with TV bounds `tv` [K]) and the newest segment (release `update_tv_weights`).
    A TV of 0 (a policy that never changed) is taken as 1e-12."""
    inv = 1.0 / tv.to(torch.float64).clamp(min=1e-12)
    old = inv / inv.sum()  # [K]
    warmup = warmup_factor * old[0]
    newest = torch.maximum((warmup + old.sum()) * max_rate / (1.0 - max_rate), old.max())
    return torch.cat([warmup.view(1), old, newest.view(1)])


def spread(counts: Tensor, starts: Tensor, total: int) -> Tensor:
    """Positions [K, m] of m = max(1, total // K) evenly spaced members of each of K runs
    (the midpoints of m equal strata) given each run's length `counts` [K] and first
    position `starts` [K]."""
    m = max(1, total // counts.numel())
    strata = 2 * torch.arange(m, device=counts.device) + 1  # [m]
    return starts.unsqueeze(1) + (strata * counts.unsqueeze(1)) // (2 * m)  # [K, m]
