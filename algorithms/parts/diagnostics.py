"""Model diagnostics measured at every evaluation (docs/pipeline.md "The run directory";
PMAC paper Fig. 1 and 3): one-step error, compounding error, the co-adaptation gap and the Q-value
distribution of visited state-actions.

They reuse the evaluation episodes of the current deterministic policy (fresh transitions
the model never trained on) and samples of the real buffer; they take no real-environment
step and feed no buffer. Their randomness comes from their own generator, so switching
them off or on does not change the training run.

Definitions
- one-step error: the squared error of the ensemble's mean prediction, raw units, for the
  next state (`target` state: mean over samples and state dimensions) and for the reward
  (`target` reward: mean over samples); `local` on the evaluation transitions, `global` on
  a uniform sample of the real buffer.
- compounding error at h: L2 distance between the state after h model steps and the real
  state after h steps, same start state and same actions, averaged over `segments`
  segments of the evaluation episodes. The model steps the way the algorithm's rollouts do
  (`sample_step`: a random elite per sample, Gaussian noise), or by its mean (`mean`).
- co-adaptation gap: the policy's return over h steps inside the model (policy acting on
  model states, rewards predicted, stopping at a predicted termination) against the real
  return of the same h steps from the same start states (the evaluation episode itself).
- visitation: quantiles of min(Q1, Q2) over state-actions from the current policy (its
  evaluation states and actions), the PMAC-weighted buffer mixture, and the uniform buffer.
- critic bias (`critic_row`): the critic's mean min(Q1, Q2) at the evaluation episodes'
  state-actions against the discounted return the episodes realised from there, over the
  states whose return the episode determines (all of a terminated episode; of one cut by
  the time limit, those at least log(0.01) / log(gamma) steps before the cut, where the
  missing tail weighs < 1%). The realised return has no entropy term; the soft Q-value
  also holds the policy's future entropy bonus, estimated as `entropy_bonus` = alpha x the
  policy's entropy at those states x gamma / (1 - gamma), so an unbiased soft critic has
  q_bias ~ entropy_bonus (negative for Hopper's target entropy -1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch

from algorithms.parts.buffer import ReplayBuffer
from algorithms.parts.envs import TerminationFn
from algorithms.parts.loop import Episode
from algorithms.parts.seeding import Generators


class StepModel(Protocol):
    def predict_mean(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, ...]: ...

    def sample_step(
        self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, ...]: ...


@dataclass(frozen=True)
class DiagnosticsConfig:
    """What the model diagnostics measure at each evaluation."""

    enabled: bool = True
    horizon: int = 20  # compounding error / co-adaptation up to this many steps (Fig. 3d)
    segments: int = 10  # real trajectory segments per evaluation (Fig. 3d: 10)
    sampling: Literal["sample", "mean"] = "sample"  # "sample" = as the algorithm's rollouts
    global_samples: int = 5_000  # uniform real-buffer sample for the `global` one-step error
    visitation_samples: int = 5_000  # samples per source for the Q-value quantiles
    quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)

    def __post_init__(self) -> None:
        for name in ("horizon", "segments", "global_samples", "visitation_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"diagnostics.{name} must be >= 1, got {getattr(self, name)}")
        if self.sampling not in ("sample", "mean"):
            raise ValueError(
                f"diagnostics.sampling must be 'sample' or 'mean', got {self.sampling!r}"
            )
        if not all(0.0 <= q <= 1.0 for q in self.quantiles):
            raise ValueError(f"diagnostics.quantiles must lie in [0, 1], got {self.quantiles}")


@dataclass
class Segment:
    """H consecutive real steps of one evaluation episode (H may be shorter at its end)."""

    obs: np.ndarray  # [H + 1, D] real states, obs[0] the start
    act: np.ndarray  # [H, A] the actions the policy took
    rew: np.ndarray  # [H] real rewards


def transitions(
    episodes: list[Episode],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All (obs [N, D], act [N, A], next_obs [N, D], rew [N]) of the episodes."""
    obs = np.concatenate([e.obs[:-1] for e in episodes])
    act = np.concatenate([e.act for e in episodes])
    nxt = np.concatenate([e.obs[1:] for e in episodes])
    rew = np.concatenate([e.rew for e in episodes])
    return obs, act, nxt, rew


def pick_segments(
    episodes: list[Episode], n: int, horizon: int, rng: np.random.Generator
) -> list[Segment]:
    """n segments with uniformly drawn start steps over all evaluation transitions; each
    runs `horizon` steps or to its episode's end, whichever comes first."""
    lengths = np.array([len(e) for e in episodes])
    starts = rng.integers(lengths.sum(), size=n)
    bounds = np.cumsum(lengths)
    out = []
    for flat in starts:
        i = int(np.searchsorted(bounds, flat, side="right"))
        t = int(flat - (bounds[i] - lengths[i]))
        e, end = episodes[i], min(t + horizon, lengths[i])
        out.append(Segment(e.obs[t : end + 1], e.act[t:end], e.rew[t:end]))
    return out


def one_step_errors(model: StepModel, obs, act, next_obs, rew, device) -> dict[str, float]:
    """Squared error of the mean prediction: {"state": mean over samples and state dims,
    "reward": mean over samples}."""
    o, a, n, r = (
        torch.as_tensor(x, dtype=torch.float32, device=device) for x in (obs, act, next_obs, rew)
    )
    pred_obs, pred_rew = model.predict_mean(o, a)[:2]
    return {
        "state": float((pred_obs - n).pow(2).mean()),
        "reward": float((pred_rew.reshape(-1) - r.reshape(-1)).pow(2).mean()),
    }


def _model_step(model: StepModel, obs, act, sampling: str, gen: torch.Generator):
    if sampling == "mean":
        return model.predict_mean(obs, act)[:2]
    return model.sample_step(obs, act, gen)[:2]


def _stack(segments: list[Segment], device):
    """Pad segments to a common length: start [n, D], act [n, H, A], real next states
    [n, H, D], cumulative real return [n, H] (held at its last value past the episode's
    end) and a mask [n, H] of real steps."""
    n, horizon = len(segments), max(len(s.act) for s in segments)
    d, a = segments[0].obs.shape[1], segments[0].act.shape[1]
    act, nxt = np.zeros((n, horizon, a), np.float32), np.zeros((n, horizon, d), np.float32)
    cum, mask = np.zeros((n, horizon)), np.zeros((n, horizon), bool)
    for i, s in enumerate(segments):
        k = len(s.act)
        act[i, :k], nxt[i, :k], mask[i, :k] = s.act, s.obs[1 : k + 1], True
        cum[i] = np.cumsum(np.concatenate([s.rew, np.zeros(horizon - k)]))
    start = np.stack([s.obs[0] for s in segments])

    def t(x):
        return torch.as_tensor(x, device=device)

    return t(start), t(act), t(nxt), cum, mask


@torch.no_grad()
def compounding_error(
    model: StepModel, segments: list[Segment], sampling: str, gen: torch.Generator, device
) -> list[tuple[int, float]]:
    """(h, mean L2 distance) for h = 1..H, over the segments at least h steps long; the
    model replays each segment's real actions from its real start state."""
    state, act, real, _, mask = _stack(segments, device)
    out = []
    for h in range(act.shape[1]):
        state = _model_step(model, state, act[:, h], sampling, gen)[0]
        dist = torch.linalg.vector_norm(state - real[:, h], dim=-1).cpu().numpy()  # [n]
        out.append((h + 1, float(dist[mask[:, h]].mean())))
    return out


@torch.no_grad()
def coadaptation(
    model: StepModel,
    policy,
    segments: list[Segment],
    termination: TerminationFn | None,
    sampling: str,
    gen: torch.Generator,
    device,
) -> list[tuple[int, float, float]]:
    """(h, mean model return, mean real return) for h = 1..H: the current deterministic
    policy (obs tensor -> action tensor) acting on the model's states from each segment's
    real start state, against the real rewards the same policy collected from there. A
    model branch stops collecting reward at a predicted termination; a real segment whose
    episode ended keeps the return it had."""
    state, _, _, real_cum, _ = _stack(segments, device)
    alive = torch.ones(state.shape[0], dtype=torch.bool, device=device)
    model_ret = torch.zeros(state.shape[0], dtype=torch.float64, device=device)
    out = []
    for h in range(real_cum.shape[1]):
        state, rew = _model_step(model, state, policy(state), sampling, gen)
        model_ret += torch.where(alive, rew.to(torch.float64), 0.0)
        if termination is not None:
            alive &= ~termination(state)
        out.append((h + 1, float(model_ret.mean()), float(real_cum[:, h].mean())))
    return out


def q_quantiles(q_values: torch.Tensor, quantiles: tuple[float, ...]) -> list[tuple[float, float]]:
    qs = torch.quantile(q_values.to(torch.float64), torch.tensor(quantiles, dtype=torch.float64))
    return list(zip(quantiles, qs.tolist(), strict=True))


def model_rows(
    t: int,
    local: dict[str, float],
    glob: dict[str, float],
    comp: list[tuple[int, float]],
    coad: list[tuple[int, float, float]],
) -> dict[str, list[dict]]:
    """Rows of model.csv, compounding.csv and coadaptation.csv at env step t (the column
    contract of docs/pipeline.md), from the measurements above."""
    return {
        "model": [
            {"step": t, "split": split, "target": target, "error": error}
            for split, errors in (("local", local), ("global", glob))
            for target, error in errors.items()
        ],
        "compounding": [{"step": t, "horizon": h, "error": e} for h, e in comp],
        "coadaptation": [
            {"step": t, "horizon": h, "model_return": m, "real_return": r} for h, m, r in coad
        ],
    }


def model_measurements(
    model: StepModel,
    policy_for: Callable[[list[Segment]], Callable[[torch.Tensor], torch.Tensor]],
    episodes: list[Episode],
    real: ReplayBuffer,
    termination: TerminationFn | None,
    d: DiagnosticsConfig,
    gens: Generators,
    t: int,
    stored: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[dict[str, list[dict]], tuple[np.ndarray, np.ndarray]]:
    """The one diagnostics sequence of every model-based algorithm at env step t: the rows
    of model.csv (one-step state and reward errors on this evaluation's transitions and on
    a uniform sample of the real buffer), compounding.csv and coadaptation.csv, drawn from
    the diagnostics generators only. `policy_for(segments)` gives the policy the
    co-adaptation gap runs (drawn after the compounding error: PETS plans from each
    segment's start); `stored` maps env actions to the buffer's layout (PETS), identity if
    None.

    Returns the rows and the evaluation episodes' (obs [N, D], act [N, A]) for the
    algorithm's visitation sources."""
    gen, dev = gens.diag_torch, real.device
    obs, act, nxt, rew = transitions(episodes)
    if stored is not None:
        act = stored(act)
    g = real.sample_indices(d.global_samples, gen)
    local = one_step_errors(model, obs, act, nxt, rew, dev)
    glob = one_step_errors(model, real.obs[g], real.act[g], real.next_obs[g], real.rew[g], dev)
    segs = pick_segments(episodes, d.segments, d.horizon, gens.diag_numpy)
    if stored is not None:
        segs = [dataclasses.replace(s, act=stored(s.act)) for s in segs]
    comp = compounding_error(model, segs, d.sampling, gen, dev)
    coad = coadaptation(model, policy_for(segs), segs, termination, d.sampling, gen, dev)
    return model_rows(t, local, glob, comp, coad), (obs, act)


def visitation_rows(
    t: int, q_by_source: dict[str, torch.Tensor], quantiles: tuple[float, ...]
) -> list[dict]:
    """Rows of visitation.csv at env step t: the quantiles of each source's Q-values."""
    return [
        {"step": t, "source": source, "q_quantile": quantile, "q_value": value}
        for source, q in q_by_source.items()
        for quantile, value in q_quantiles(q, quantiles)
    ]


def complete_returns(
    episodes: list[Episode], gamma: float, tail: float = 0.01
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(obs [N, D], act [N, A], discounted return [N]) of the evaluation steps whose
    discounted return the episode determines: every step of a terminated episode; of one
    cut by its time limit, the steps at least log(tail) / log(gamma) steps before the cut
    (the missing tail then weighs less than `tail` of a constant reward stream)."""
    if gamma <= 0:
        cut = 0
    else:
        cut = math.ceil(math.log(tail) / math.log(gamma)) if gamma < 1 else math.inf
    obs, act, ret = [], [], []
    for e in episodes:
        g = np.zeros(len(e) + 1)
        for i in range(len(e) - 1, -1, -1):
            g[i] = e.rew[i] + gamma * g[i + 1]
        keep = len(e) if e.terminated else max(len(e) - cut, 0)
        obs.append(e.obs[:keep])
        act.append(e.act[:keep])
        ret.append(g[:keep])
    return np.concatenate(obs), np.concatenate(act), np.concatenate(ret)


def critic_row(
    t: int, q: torch.Tensor, ret: np.ndarray, alpha: float, entropy: float, gamma: float
) -> dict[str, float]:
    """The row of critic.csv at env step t (definitions in the module docstring): the
    critic's min(Q1, Q2) [N] at the complete-return states, their realised returns [N],
    the temperature and the policy's mean entropy there."""
    q_mean, ret_mean = float(q.to(torch.float64).mean()), float(np.mean(ret))
    return {
        "step": t,
        "states": int(len(ret)),
        "q_mean": q_mean,
        "return_mean": ret_mean,
        "q_bias": q_mean - ret_mean,
        "alpha": alpha,
        "entropy_bonus": alpha * entropy * gamma / (1.0 - gamma) if gamma < 1 else math.nan,
    }
