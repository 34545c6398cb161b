"""Dyna-Q on CartPole (docs/ambiguities.md D1-D11; Sutton 1990's Dyna with a learned
neural model): `algorithms.dqn`'s Q-learner plus a dynamics model and imagined transitions.

Per real step after warm-up (recipe steps 2-4): at the end of warm-up and then every
`model_train_freq` steps the model is refit on all real transitions; then K = `rollouts`
imagined rollouts of horizon H are rolled from start states drawn uniformly from the real
buffer, with the agent's current eps-greedy policy (the recipe's a_t = pi(s_t)), and every
imagined transition goes into the Q-buffer next to the real ones; then the one Q update of
the real step. The K
rollouts are one batched tensor operation per horizon step.

The model is `algorithms.parts.ensemble.ProbabilisticEnsemble` (Gaussian NLL on [reward, next
state - state], mean and log-variance heads, Adam lr 1e-3, batch 256, input normalisation,
holdout early stopping, at most 50 epochs per fit: recipe step 3) with one-hot actions at
its input; one member for `dyna_q`, three for the adaptive variant. Imagined next states
are sampled from the predicted Gaussian (MBPO's model step), rewards are the model's,
terminations come from the known CartPole termination function (`algorithms.parts.envs`). The
recipe's "L2 penalty on the Laplacian of the prediction" is read as the ensemble's L2
weight decay (docs/ambiguities.md).

Adaptive horizon (`horizon_mode="adaptive"`, the recipe's "frontier researcher" build,
ledger D10): the
disagreement of the 3 members, u(s, a) = mean over state dimensions of the members'
standard deviation of the predicted next state, in units of the state's standard
deviation, decides per rollout and per step: a rollout continues (up to `horizon` steps)
while u stays at or below a threshold and stops, without storing that step, where it
exceeds it. The threshold is the `disagreement_quantile` quantile of u over the real
transitions the model held out at its last fit (how much the members disagree on real
data they did not train on). This is our rule, in the spirit of MACURA (Frauenknecht et
al. 2024, arXiv:2405.19014), which cuts each model rollout where the model's own
uncertainty passes a threshold derived from its uncertainty on real start states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from algorithms.dqn import DQNConfig, QAgent, State, check_discrete, run
from algorithms.parts import diagnostics as diag
from algorithms.parts.buffer import ReplayBuffer
from algorithms.parts.ensemble import EnsembleConfig, ProbabilisticEnsemble
from algorithms.parts.envs import EnvSpec, TerminationFn
from algorithms.parts.fit import fit_ensemble
from algorithms.parts.loop import Checkpointer, Episode, Recorder, resume
from algorithms.parts.seeding import Generators

IMAGINED = 1  # `segment` of imagined transitions in the Q-buffer (real ones are 0)


def _model_config(members: int = 1) -> EnsembleConfig:
    """Recipe step 3: Adam lr 1e-3, batch 256, 50 epochs (an upper bound here: holdout early
    stopping as in the shared ensemble). A small 3 x 200 SiLU MLP; L2 decays are MBPO's
    first four (jannerm/mbpo)."""
    return EnsembleConfig(
        members=members,
        elites=members,
        hidden=200,
        layers=3,
        lr=1e-3,
        weight_decay=(2.5e-5, 5e-5, 7.5e-5, 1e-4),
        batch_size=256,
        max_epochs=50,
    )


@dataclass(frozen=True)
class DynaQConfig(DQNConfig):
    """Dyna-Q: the DQN budget and Q-learner plus the model and imagined rollouts."""

    rollouts: int = 25  # K imagined rollouts per real step (recipe step 4)
    horizon: int = 3  # H (recipe step 4); the maximum horizon in adaptive mode
    horizon_mode: Literal["fixed", "adaptive"] = "fixed"
    disagreement_quantile: float = 0.9  # adaptive: threshold quantile of holdout disagreement
    model_train_freq: int = 500  # real steps between model fits (docs/ambiguities.md)
    deterministic_rollouts: bool = False  # True: each member's mean, no sampled noise
    model: EnsembleConfig = field(default_factory=_model_config)
    diagnostics: diag.DiagnosticsConfig = field(default_factory=diag.DiagnosticsConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rollouts", "horizon", "model_train_freq"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.disagreement_quantile <= 1.0:
            raise ValueError(
                f"disagreement_quantile must be in (0, 1], got {self.disagreement_quantile}"
            )
        if self.horizon_mode == "adaptive" and self.model.members < 2:
            raise ValueError(
                f"horizon_mode=adaptive needs model.members >= 2 to measure disagreement, "
                f"got {self.model.members}"
            )
        # The model is first fit at the end of warm-up on the warm-up transitions; its
        # holdout (20%) and training split must both be non-empty.
        if self.warmup_steps < 10:
            raise ValueError(
                f"dyna_q needs warmup_steps >= 10 to fit the model, got {self.warmup_steps}"
            )


def adaptive_config() -> DynaQConfig:
    """The adaptive-horizon variant: 3 models, horizon up to 5 (the longest fixed H
    studied)."""
    return DynaQConfig(horizon_mode="adaptive", horizon=5, model=_model_config(members=3))


class DiscreteModel:
    """The ensemble seen with index actions ([B, 1] float, the buffers' layout): one-hot at
    its input. Implements `diagnostics.StepModel`, stepping as the rollouts do.

    `step` evaluates all members in one batched forward and gives each sample one elite
    drawn i.i.d. uniformly (MBPO's original rule; `ProbabilisticEnsemble.sample_step`'s
    balanced partition costs ~0.5 ms of gathering per call, too much for 3 calls per real
    step on 25 states), plus the members' disagreement from the same forward."""

    def __init__(self, ensemble: ProbabilisticEnsemble, n_actions: int, deterministic: bool):
        self.ensemble, self.n_actions, self.deterministic = ensemble, n_actions, deterministic

    def one_hot(self, act: Tensor) -> Tensor:
        return F.one_hot(act.long().squeeze(-1), self.n_actions).to(torch.float32)  # [B, A]

    def _members(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """Every member's mean and log-variance of [reward, delta]: [E, B, 1 + D] each."""
        ens = self.ensemble
        x = ens.normalise(torch.cat([obs, self.one_hot(act)], dim=-1))  # [B, in]
        return ens(x.unsqueeze(0).expand(ens.cfg.members, -1, -1))

    def _disagreement(self, mean: Tensor) -> Tensor:
        """u [B]: mean over state dims of the members' std of the predicted next state
        (= of the delta), divided by the state's std (the input normaliser's)."""
        spread = mean[..., 1:].std(0, correction=0)  # [B, D]
        return (spread / self.ensemble.in_std[: self.ensemble.obs_dim]).mean(-1)

    @torch.no_grad()
    def disagreement(self, obs: Tensor, act: Tensor) -> Tensor:
        return self._disagreement(self._members(obs, act)[0])

    @torch.no_grad()
    def step(self, obs: Tensor, act: Tensor, gen: torch.Generator) -> tuple[Tensor, ...]:
        """obs [B, D], act [B, 1] -> next_obs [B, D], reward [B], disagreement u [B]; each
        row's elite drawn i.i.d. (ledger D4)."""
        elites, b = self.ensemble.elite_idx, obs.shape[0]
        if elites.shape[0] == 1:
            member = elites[:1].expand(b)  # [B]
        else:
            member = elites[torch.randint(elites.shape[0], (b,), generator=gen, device=obs.device)]
        nxt, rew, mean = self.ensemble.member_step(
            obs, self.one_hot(act), member, gen, self.deterministic
        )  # [B, D], [B], [E, B, 1 + D]
        return nxt, rew, self._disagreement(mean)

    def sample_step(self, obs: Tensor, act: Tensor, generator: torch.Generator):
        return self.step(obs, act, generator)[:2]

    def predict_mean(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        return self.ensemble.predict_mean(obs, self.one_hot(act))

    def fit(self, real: ReplayBuffer, gen: torch.Generator) -> dict[str, float]:
        n = len(real)
        act = self.one_hot(real.act[:n])
        return fit_ensemble(self.ensemble, real.obs[:n], act, real.next_obs[:n], real.rew[:n], gen)


@torch.no_grad()
def imagine(
    model: DiscreteModel,
    agent: QAgent,
    starts: Tensor,
    horizon: int,
    eps: float,
    termination: TerminationFn | None,
    gen: torch.Generator,
    threshold: float | None = None,
) -> tuple[tuple[Tensor, ...], int]:
    """Rollouts from start states [K, D] for up to `horizon` steps, all K as one batch per
    step; a terminated rollout stops. With `threshold`, a rollout also stops at a step
    whose disagreement exceeds it, without storing that step. Returns the imagined
    transitions (obs [N, D], act [N, 1], rew [N], next_obs [N, D], done [N]), N <= K * H,
    and how many rollouts the threshold stopped."""
    obs, parts, cut = starts, [], 0
    for _ in range(horizon):
        act = agent.act_batch(obs, eps, gen)  # [n, 1]
        next_obs, rew, u = model.step(obs, act, gen)
        if threshold is not None:
            trusted = u <= threshold  # [n]
            cut += int((~trusted).sum())
            obs, act, rew, next_obs = obs[trusted], act[trusted], rew[trusted], next_obs[trusted]
        if termination is None:
            done = torch.zeros(obs.shape[0], dtype=torch.bool, device=obs.device)
        else:
            done = termination(next_obs)
        parts.append((obs, act, rew, next_obs, done))
        obs = next_obs[~done]
        if obs.shape[0] == 0:
            break
    return tuple(torch.cat(cols) for cols in zip(*parts, strict=True)), cut


@dataclass
class DynaState(State):
    """DQN's state plus the model and what the train.csv rows report about it."""

    model: DiscreteModel | None = None
    fit: dict[str, float] = field(default_factory=dict)  # last model fit
    threshold: float = float("nan")  # adaptive: current disagreement threshold
    wall: dict[str, float] = field(
        default_factory=lambda: {
            "model_train_wall_s": 0.0,
            "rollout_wall_s": 0.0,
            "diagnostics_wall_s": 0.0,
        }
    )


def fresh_state(cfg: DynaQConfig, spec: EnvSpec, device: torch.device) -> DynaState:
    agent = QAgent(spec.obs_dim, spec.act_dim, cfg.q, device)
    real = ReplayBuffer(cfg.total_steps, spec.obs_dim, 1, device)
    q_buffer = ReplayBuffer(cfg.replay_size, spec.obs_dim, 1, device)
    ensemble = ProbabilisticEnsemble(spec.obs_dim, spec.act_dim, cfg.model, device)
    model = DiscreteModel(ensemble, spec.act_dim, cfg.deterministic_rollouts)
    return DynaState(agent, real, q_buffer, model=model)


def train(
    cfg: DynaQConfig,
    spec: EnvSpec,
    gens: Generators,
    device: torch.device,
    rec: Recorder,
    ckpt: Checkpointer | None = None,
) -> dict[str, Any]:
    """Train one Dyna-Q run (fixed or adaptive horizon); returns the done.json summary.
    The loop is `algorithms.dqn.run`'s, with `plan` (per real step after warm-up, before
    the Q update): every `model_train_freq` steps refit the model (adaptive: and its
    disagreement threshold), then K imagined rollouts from real start states into the
    Q-buffer."""
    check_discrete(spec, "dyna_q")
    state, loop = resume(ckpt, gens, lambda: fresh_state(cfg, spec, device))
    gen = gens.torch

    def plan(t: int, eps: float) -> dict[str, float]:
        model = state.model  # read through the state (checkpoint/resume may replace it)
        assert model is not None
        t0 = time.perf_counter()
        if (t - cfg.warmup_steps) % cfg.model_train_freq == 0:
            state.fit = {k: float(v) for k, v in model.fit(state.real, gen).items()}
            if cfg.horizon_mode == "adaptive":
                state.threshold = holdout_threshold(model, state.real, cfg.disagreement_quantile)
        t1 = time.perf_counter()
        starts = state.real.obs[state.real.sample_indices(cfg.rollouts, gen)]  # [K, D]
        threshold = state.threshold if cfg.horizon_mode == "adaptive" else None
        batch, cut = imagine(
            model, state.agent, starts, cfg.horizon, eps, spec.termination, gen, threshold
        )
        state.q_buffer.add_batch(*batch, segment=IMAGINED)
        state.wall["model_train_wall_s"] += t1 - t0
        state.wall["rollout_wall_s"] += time.perf_counter() - t1
        n = batch[0].shape[0]
        return {"imagined": n, "rollout_length": n / cfg.rollouts, "cut": cut / cfg.rollouts}

    def row_extra() -> dict[str, float]:
        return {
            "horizon": cfg.horizon,
            "disagreement_threshold": state.threshold,
            "q_buffer_size": len(state.q_buffer),
            **state.fit,
            **state.wall,
        }

    def diagnose(t: int, episodes: list[Episode]) -> None:
        if not cfg.diagnostics.enabled or not state.fit:  # no model fitted yet
            return
        start = time.perf_counter()
        for name, rows in model_diagnostics(cfg, spec, state, episodes, t, gens).items():
            rec.table(name, rows)
        state.wall["diagnostics_wall_s"] += time.perf_counter() - start

    summary = run(cfg, spec, gens, rec, state, plan, row_extra, diagnose, loop=loop, ckpt=ckpt)
    return {**summary, "diagnostics_wall_s": state.wall["diagnostics_wall_s"]}


def holdout_threshold(model: DiscreteModel, real: ReplayBuffer, quantile: float) -> float:
    """The `quantile` quantile of the disagreement on the transitions the last fit held out."""
    idx = model.ensemble.last_holdout_idx
    assert idx is not None
    u = model.disagreement(real.obs[idx], real.act[idx])
    return float(torch.quantile(u.to(torch.float64), quantile))


def model_diagnostics(
    cfg: DynaQConfig,
    spec: EnvSpec,
    state: DynaState,
    episodes: list[Episode],
    t: int,
    gens: Generators,
) -> dict[str, list[dict]]:
    """Rows of model.csv, compounding.csv, coadaptation.csv and visitation.csv at env step
    t (definitions in algorithms.parts.diagnostics). The co-adaptation policy is the greedy Q
    policy. Visitation has no PMAC mixture here; its sources are the greedy policy's
    evaluation state-actions (`policy`), the real buffer (`uniform`) and the Q-buffer's
    imagined transitions (`imagined`), Q(s, a) of the recorded action."""
    d, gen, dev, model = cfg.diagnostics, gens.diag_torch, state.real.device, state.model
    assert model is not None
    real, qbuf = state.real, state.q_buffer
    rows, (obs, act) = diag.model_measurements(
        model, lambda segs: state.agent.greedy, episodes, real, spec.termination, d, gens, t
    )
    uni = real.sample_indices(d.visitation_samples, gen)
    sources = {
        "policy": (torch.as_tensor(obs, device=dev), torch.as_tensor(act, device=dev)),
        "uniform": (real.obs[uni], real.act[uni]),
    }
    imagined = torch.nonzero(qbuf.segment[: len(qbuf)] == IMAGINED).squeeze(1)
    if len(imagined):  # the adaptive rule may have stopped every rollout so far
        draw = torch.randint(len(imagined), (d.visitation_samples,), generator=gen, device=dev)
        sources["imagined"] = (qbuf.obs[imagined[draw]], qbuf.act[imagined[draw]])
    with torch.no_grad():
        q = {
            source: state.agent.values(o).gather(1, a.long()).squeeze(1)
            for source, (o, a) in sources.items()
        }
    return {**rows, "visitation": diag.visitation_rows(t, q, d.quantiles)}
