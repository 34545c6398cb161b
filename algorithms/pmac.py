"""PMAC's policy-adaptation mechanism (Wang et al., "Live in the Moment: Learning Dynamics
Model Adapted to Evolving Policy", Algorithm 1 and Eq. 4).

PMAC is MBPO plus this module: the real buffer knows which segment of
`adaptation_interval` env steps (one "historical policy") produced each transition, and a
mixture over segments that decays old policies geometrically replaces MBPO's uniform
sampling, for the model's training data and/or the rollout start states: the `age`
scheme of `algorithms.weighting`, which `algorithms.mbpo` applies (`pmac_model_only` /
`pmac_rollout_only` are paper C.1).

Choices where the paper is silent are in docs/ambiguities.md: segment 0 is the whole
random warm-up; the weights are computed at sampling time over the segments that hold
data (a partial newest segment counts as the newest policy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AgeConfig:
    """The policy-adaptation rate (paper D.1 and Table 2); the segment length, which data the
    weights drive and how they enter the model's loss are `algorithms.weighting`'s."""

    alpha: float = 0.9  # policy-adaptation rate, paper D.1 (C.2: 0.9 best of 0.5..0.99)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"weighting.age.alpha must be in (0, 1), got {self.alpha}")


def mixture_weights(k: int, alpha: float) -> np.ndarray:
    """Segment weights after k updates of Algorithm 1, oldest first, shape [k + 1].

    Starting from weight 1 on the warm-up segment, each update multiplies every weight by
    alpha and gives the new segment (1 - alpha) of the (constant, unit) total (Eq. 4):
    `[alpha^k, (1-alpha) alpha^(k-1), ..., (1-alpha) alpha, 1-alpha]`.
    """
    if k < 0:
        raise ValueError(f"number of updates k must be >= 0, got {k}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    ages = np.arange(k - 1, -1, -1, dtype=np.float64)  # age of segments 1..k (newest: 0)
    weights = np.empty(k + 1, dtype=np.float64)
    weights[0] = alpha**k
    weights[1:] = (1.0 - alpha) * alpha**ages
    return weights


def segment_of_step(step: int, warmup_steps: int, interval: int) -> int:
    """Segment id of the transition collected at 0-based env step `step` (0 = warm-up)."""
    if step < warmup_steps:
        return 0
    return 1 + (step - warmup_steps) // interval


def transition_weights(segments: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-transition sampling probabilities [N] for segment ids [N] (0 = warm-up).

    Drawing a transition with these probabilities is the same as drawing a segment by its
    mixture weight and then a transition uniformly inside it. Segments without data (none
    in practice: ids are contiguous) get no mass; the result sums to 1.
    """
    counts = torch.bincount(segments)  # [S]
    k = counts.numel() - 1
    seg_w = torch.as_tensor(mixture_weights(k, alpha), dtype=torch.float64, device=segments.device)
    per_transition = seg_w / counts.clamp(min=1).to(torch.float64)  # [S]
    probs = per_transition[segments]  # [N]
    return (probs / probs.sum()).to(torch.float32)
