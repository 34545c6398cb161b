"""How the real buffer is weighted for the model's training data and for the rollout start
states: one interface, six schemes (PMAC paper Sec. 5.3 and Fig. 3g/h; what each
reweights and refreshes: docs/ambiguities.md #23-#27).

- `uniform` (MBPO): 1 / N.
- `age` (PMAC Eq. 4, `algorithms.pmac`): the segment's geometric age weight, uniform inside.
- `policy_distance` (the PDML release, `algorithms.pdml`): the segment's 1 / TV(pi_segment,
  pi_current), with the release's warm-up and newest-segment rules.
- `per` (Schaul et al. 2016): |TD error|^0.6, importance weights on the model's loss.
- `maper` (Oh et al. 2022): (TD error^2 + model error^2)^0.5, likewise.
- `recall` (Goyal et al. 2018 as PMAC Sec. 5.3 implements it): uniform over the top 25%
  by Q value (`algorithms.priorities`).

A scheme object is part of the run's state (checkpointed with it). `algorithms.mbpo` calls
`stored` for every real transition as it enters the buffer, `replayed` with the real part
of every env step's SAC batches (the critics' Q and targets: the prioritised schemes
refresh their priorities from them, as PER refreshes from its own replays), and `weights`
at every model period. `weights` changes nothing and draws no random numbers, so the
diagnostics call it too (visitation.csv's source named after the scheme).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from algorithms.parts.buffer import ReplayBuffer
from algorithms.pdml import PolicyDistanceConfig, gaussian_tv_bound, segment_weights, spread
from algorithms.pmac import AgeConfig, transition_weights
from algorithms.priorities import (
    PriorityConfig,
    RecallConfig,
    annealed_beta,
    importance_weights,
    last_occurrence,
    maper_config,
    per_config,
    sampling_probabilities,
    top_fraction_probabilities,
)

Scheme = Literal["uniform", "age", "policy_distance", "per", "recall", "maper"]
SEGMENTED = ("age", "policy_distance")  # schemes whose weights are per policy segment


@dataclass(frozen=True)
class WeightingConfig:
    """Which scheme weights the real buffer, for what, and each scheme's hyperparameters."""

    scheme: Scheme = "uniform"  # uniform: MBPO
    for_model: bool = True  # the weights drive the model's training data (PMAC Alg. 2 line 3)
    for_rollout: bool = True  # the weights drive the rollout start states (Alg. 2 line 8)
    # How they enter the model's loss (docs/ambiguities.md #2): "resample" draws each member's
    # bootstrap by the weights, "loss" draws it uniformly and scales each sample's NLL.
    mode: Literal["resample", "loss"] = "resample"
    adaptation_interval: int = 250  # env steps per historical policy (age, policy_distance; D.1)
    age: AgeConfig = field(default_factory=AgeConfig)
    policy_distance: PolicyDistanceConfig = field(default_factory=PolicyDistanceConfig)
    per: PriorityConfig = field(default_factory=per_config)
    maper: PriorityConfig = field(default_factory=maper_config)
    recall: RecallConfig = field(default_factory=RecallConfig)

    def __post_init__(self) -> None:
        if self.adaptation_interval < 1:
            raise ValueError(
                f"weighting.adaptation_interval must be >= 1, got {self.adaptation_interval}"
            )


class Weights(NamedTuple):
    """One model period's weighting of the buffer's first N rows."""

    probs: Tensor | None  # [N] sampling probabilities; None: uniform (MBPO's draws)
    factors: Tensor | None  # [N] importance weights on the model's NLL; None: all 1
    summary: dict[str, float]  # train.csv columns (the same keys at every period)


class Replayed(NamedTuple):
    """The real part of one SAC batch: buffer rows [n], the critics' Q [2, n] and the
    targets y [n] before the update."""

    idx: Tensor
    q: Tensor
    y: Tensor


class Weighting:
    """The interface (its hooks default to no-ops)."""

    def stored(self, pos: int, obs, act, segment: int, agent) -> None:
        """Row `pos` of the real buffer now holds (obs, act) from policy segment `segment`."""

    def replayed(self, batches: list[Replayed], real: ReplayBuffer, model) -> None:
        """One env step's SAC updates used these real transitions."""

    def weights(self, real: ReplayBuffer, agent, t: int) -> Weights:
        """The weighting at env step t (no state change, no random numbers)."""
        return Weights(None, None, {})


class Uniform(Weighting):
    """MBPO: every transition alike."""


def _masses(prefix: str, probs: Tensor, segments: Tensor) -> dict[str, float]:
    """The number of segments and the probability mass of the newest and of the warm-up."""
    newest = int(segments.max())
    return {
        f"{prefix}_segments": newest + 1,
        f"{prefix}_weight_newest": float(probs[segments == newest].sum()),
        f"{prefix}_weight_warmup": float(probs[segments == 0].sum()),
    }


@dataclass
class Age(Weighting):
    """PMAC (Eq. 4): segment weights decayed by alpha per newer segment."""

    alpha: float

    def weights(self, real, agent, t):
        segments = real.segment[: len(real)]
        probs = transition_weights(segments, self.alpha)
        return Weights(probs, None, _masses("pmac", probs, segments))


@dataclass
class PolicyDistance(Weighting):
    """PDML: segment weights 1 / TV(pi_segment, pi_current) (`algorithms.pdml`). `dist`
    [C, 2, A] holds each transition's pre-tanh mean and log std of the acting policy."""

    cfg: PolicyDistanceConfig
    dist: Tensor

    def stored(self, pos, obs, act, segment, agent):
        if segment == 0:  # warm-up: uniform random actions, no Gaussian to store
            return
        with torch.no_grad():
            o = torch.as_tensor(obs, dtype=torch.float32, device=self.dist.device)
            mean, log_std = agent.actor.dist_params(o.unsqueeze(0))  # [1, A] each
        self.dist[pos] = torch.cat([mean, log_std])

    def segment_tv(self, real: ReplayBuffer, agent) -> tuple[Tensor, Tensor]:
        """(ids of the segments but the warm-up, oldest first [K + 1]; TV bound of every one
        but the newest [K]), each averaged over its share of `cfg.states` states."""
        rows = real.order()  # oldest first: segment ids are non-decreasing along it
        ids, counts = torch.unique_consecutive(real.segment[rows], return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        policy = ids > 0
        ids, counts, starts = ids[policy], counts[policy], starts[policy]
        if ids.numel() < self.cfg.start_segments:
            return ids, torch.empty(0)
        picks = rows[spread(counts[:-1], starts[:-1], self.cfg.states)]  # [K, m]
        stored = self.dist[picks.flatten()]  # [K m, 2, A]
        with torch.no_grad():
            mean, log_std = agent.actor.dist_params(real.obs[picks.flatten()])
        tv = gaussian_tv_bound(mean, log_std, stored[:, 0], stored[:, 1], self.cfg.covariance)
        return ids, tv.view(picks.shape).mean(1)

    def weights(self, real, agent, t):
        segments = real.segment[: len(real)]
        ids, tv = self.segment_tv(real, agent)
        if tv.numel() == 0:  # too few segments yet: uniform (release: initial_tv_weights)
            probs = torch.full((len(real),), 1.0 / len(real), device=segments.device)
        else:
            w = segment_weights(tv, self.cfg.max_rate, self.cfg.warmup_factor)  # [K + 2]
            table = torch.zeros(int(ids.max()) + 1, dtype=torch.float64, device=w.device)
            table[0], table[ids] = w[0], w[1:]
            per_row = table[segments]  # [N]
            probs = (per_row / per_row.sum()).to(torch.float32)
        summary = _masses("pdml", probs, segments)
        summary["pdml_tv_mean"] = float(tv.mean()) if tv.numel() else float("nan")
        return Weights(probs, None, summary)


@dataclass
class Prioritised(Weighting):
    """PER, or MaPER with `model_error`: priorities [C] before the exponent, refreshed from
    each env step's SAC replays; a new transition gets the largest priority so far."""

    name: str
    cfg: PriorityConfig
    model_error: bool
    first: int  # env step of the first model training (beta's annealing starts)
    last: int  # the run's budget (beta reaches beta_end)
    priority: Tensor
    max_priority: float = 1.0  # Schaul et al. Alg. 1: p_1 = 1

    def stored(self, pos, obs, act, segment, agent):
        self.priority[pos] = self.max_priority

    def replayed(self, batches, real, model):
        idx = torch.cat([b.idx for b in batches])  # [n]
        if idx.numel() == 0:
            return
        err = torch.cat([b.q for b in batches], 1) - torch.cat([b.y for b in batches])  # [2, n]
        if self.model_error:  # MaPER: squared TD error of the twin critics + model error
            with torch.no_grad():
                next_obs, rew = model.predict_mean(real.obs[idx], real.act[idx])
            p = (
                err.square().mean(0)
                + (rew - real.rew[idx]).square()
                + (next_obs - real.next_obs[idx]).square().sum(-1)
            )
        else:  # PER: |TD error|, averaged over the twin critics
            p = err.abs().mean(0)
        p = p + self.cfg.eps
        keep = last_occurrence(idx)
        self.priority[idx[keep]] = p[keep]
        self.max_priority = max(self.max_priority, float(p.max()))

    def weights(self, real, agent, t):
        n = len(real)
        probs = sampling_probabilities(self.priority[:n], self.cfg.exponent)
        beta = annealed_beta(t, self.cfg, self.first, self.last)
        factors = importance_weights(probs, beta).to(torch.float32)
        probs = probs.to(torch.float32)
        summary = {
            f"{self.name}_beta": beta,
            f"{self.name}_priority_max": self.max_priority,
            **_masses(self.name, probs, real.segment[:n]),
        }
        return Weights(probs, factors, summary)


@dataclass
class Recall(Weighting):
    """RECALL: the top fraction of the buffer by min(Q1, Q2)(s, a) [C], each transition's
    value when stored and refreshed from each env step's SAC replays."""

    cfg: RecallConfig
    q: Tensor

    def stored(self, pos, obs, act, segment, agent):
        dev = self.q.device
        with torch.no_grad():
            o = torch.as_tensor(obs, dtype=torch.float32, device=dev).unsqueeze(0)
            a = torch.as_tensor(act, dtype=torch.float32, device=dev).unsqueeze(0)
            self.q[pos] = agent.q_values(o, a).min(0).values[0]

    def replayed(self, batches, real, model):
        idx = torch.cat([b.idx for b in batches])
        if idx.numel() == 0:
            return
        q = torch.cat([b.q for b in batches], 1).min(0).values  # [n]
        keep = last_occurrence(idx)
        self.q[idx[keep]] = q[keep]

    def weights(self, real, agent, t):
        n = len(real)
        probs = top_fraction_probabilities(self.q[:n], self.cfg.top_fraction).to(torch.float32)
        summary = {
            "recall_q_threshold": float(self.q[:n][probs > 0].min()),
            **_masses("recall", probs, real.segment[:n]),
        }
        return Weights(probs, None, summary)


def make_weighting(
    cfg: WeightingConfig, capacity: int, act_dim: int, first: int, last: int, device: Any
) -> Weighting:
    """The scheme object of a run: real buffer capacity C, action dim A, the env steps of
    the first model training and of the end of the run."""
    if cfg.scheme == "age":
        return Age(cfg.age.alpha)
    if cfg.scheme == "policy_distance":
        return PolicyDistance(cfg.policy_distance, torch.zeros(capacity, 2, act_dim, device=device))
    if cfg.scheme in ("per", "maper"):
        prio = cfg.per if cfg.scheme == "per" else cfg.maper
        ones = torch.ones(capacity, device=device)
        return Prioritised(cfg.scheme, prio, cfg.scheme == "maper", first, last, ones)
    if cfg.scheme == "recall":
        return Recall(cfg.recall, torch.zeros(capacity, device=device))
    return Uniform()
