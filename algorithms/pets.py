"""PETS: probabilistic ensembles with trajectory sampling (Chua et al. 2018, "Deep
Reinforcement Learning in a Handful of Trials using Probabilistic Dynamics Models"), as in
kchua/handful-of-trials (`dmbrl/controllers/MPC.py`, `dmbrl/config/<env>.py`).

Per env step: plan with CEM (`algorithms.parts.cem`) over action sequences scored by the mean
return of `particles` particles propagated through the probabilistic ensemble, execute the
first action (MPC). Every `model_train_freq` env steps (default: one episode) the ensemble
is retrained on all real data; a random warm-up comes first (handful-of-trials: one random
episode). Evaluation plans `eval_episodes` episodes on the separate evaluation env.

Trajectory sampling (paper Sec. 4.2; `MPC._predict_next_obs`): particle p of every
candidate goes through member p // (particles / members). TS-inf keeps that assignment for
the whole horizon; TS-1 shuffles the particles of each candidate before every step, so each
particle's member is resampled per step (balanced per candidate, as handful-of-trials).
All candidates x particles x members go through the ensemble in one batched forward per
horizon step (`EnsembleMLP`'s baddbmm, members as the batch dim).

Rewards are learned by default (the ensemble predicts reward and state delta, as for
MBPO); `reward: known` uses `algorithms.parts.rewards`. A particle stops collecting reward after
the env's termination function fires (`algorithms.parts.envs`).

Deviations, each in docs/ambiguities.md: gymnasium v5 envs with their own rewards; no
observation pre-processing (handful-of-trials feeds sin/cos of angles to the model; our
ensemble normalises raw observations); the ensemble trains its 5 epochs with a 10% holdout
and restores each member's best epoch (handful-of-trials: no holdout, last epoch); the
CartPole-v1 discrete actions are planned as one continuous value u in [-1, 1], executed as
`u > 0` (push right) and fed to the model as +-1.

Model diagnostics through `algorithms.parts.diagnostics`: `model.csv` and
`compounding.csv` as for MBPO, the model stepped by PETS's own propagation (each segment a
particle of one fixed member for TS-inf, resampled per step for TS-1, Gaussian noise);
`coadaptation.csv` compares, from each segment's real start state, the return the planner
expects inside the model for the plan CEM returns there (the plan replayed open loop,
one particle per segment) with the real return the closed-loop planner then obtained over
the same steps. Planning from 10 start states costs 10 planned actions per evaluation,
against the evaluation episode's hundreds. `visitation.csv` does not apply: PETS has no
critic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from algorithms.parts import diagnostics as diag
from algorithms.parts.buffer import ReplayBuffer
from algorithms.parts.cem import CEMConfig, CEMPlanner
from algorithms.parts.ensemble import EnsembleConfig, ProbabilisticEnsemble
from algorithms.parts.envs import EnvSpec, TerminationFn, make_env_pair
from algorithms.parts.fit import fit_ensemble
from algorithms.parts.loop import (
    Checkpointer,
    DivergedError,
    Episode,
    LoopConfig,
    Recorder,
    online_loop,
    resume,
)
from algorithms.parts.rewards import KNOWN_REWARDS, RewardFn
from algorithms.parts.seeding import Generators

# Rows per member per forward chunk of the planning rollout: keeps each [E, rows, hidden]
# activation cache-sized (see tests/test_benchmarks.py::test_bench_pets_action).
_CHUNK = 512


def _pets_model() -> EnsembleConfig:
    """handful-of-trials halfcheetah model: 5 members (all used, no elites), 4x200 swish,
    per-layer weight decay, Adam 1e-3, minibatch 32, 5 epochs per training."""
    return EnsembleConfig(
        members=5,
        elites=5,
        hidden=200,
        layers=4,
        lr=1e-3,
        weight_decay=(2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4),
        batch_size=32,
        holdout_ratio=0.1,
        max_epochs=5,
    )


@dataclass(frozen=True)
class PETSConfig(LoopConfig):
    """PETS hyperparameters; defaults are handful-of-trials' halfcheetah, per-env values in
    config/hyperparameters.yaml (`pets:` blocks)."""

    total_steps: int = 300_000  # NTRAIN_ITERS 300 x TASK_HORIZON 1000
    warmup_steps: int = 1_000  # ninit_rollouts: 1 random episode
    eval_every: int = 1_000  # one evaluation per training episode
    eval_episodes: int = 1  # planned episodes per evaluation (planning is costly)
    model_train_freq: int | None = None  # env steps between trainings; None: episode length
    horizon: int = 30  # PLAN_HOR (pusher 25)
    particles: int = 20  # npart, a multiple of model.members
    propagation: Literal["ts_inf", "ts1"] = "ts_inf"  # trajectory sampling (paper: TS-inf)
    reward: Literal["learned", "known"] = "learned"  # known: algorithms.parts.rewards
    cem: CEMConfig = field(default_factory=CEMConfig)
    model: EnsembleConfig = field(default_factory=_pets_model)
    diagnostics: diag.DiagnosticsConfig = field(default_factory=diag.DiagnosticsConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model_train_freq is not None and self.model_train_freq < 1:
            raise ValueError(f"model_train_freq must be None or >= 1, got {self.model_train_freq}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.particles < 1 or self.particles % self.model.members:
            raise ValueError(
                f"particles must be a positive multiple of model.members={self.model.members} "
                f"(trajectory sampling splits them evenly), got {self.particles}"
            )
        if self.model.elites != self.model.members:
            raise ValueError(
                f"PETS uses every member: model.elites must equal model.members="
                f"{self.model.members}, got {self.model.elites}"
            )
        if self.diagnostics.horizon > self.horizon:
            raise ValueError(
                f"diagnostics.horizon={self.diagnostics.horizon} exceeds the planning horizon "
                f"{self.horizon} (co-adaptation replays one plan)"
            )


def validate(cfg: PETSConfig, spec: EnvSpec) -> None:
    """Checks that need the environment (the harness turns ValueError into exit 2)."""
    if cfg.reward == "known" and spec.name not in KNOWN_REWARDS:
        raise ValueError(
            f"reward=known: no known reward for {spec.name}; known: {', '.join(KNOWN_REWARDS)}"
        )
    if spec.discrete and spec.act_dim != 2:
        raise ValueError(f"PETS plans 2-action discrete envs only; {spec.name} has {spec.act_dim}")


# ---------------------------------------------------------------------- action spaces
@dataclass(frozen=True)
class Actions:
    """The planner's continuous action box and its maps to the env and to the model."""

    lb: np.ndarray  # [A] planner lower bounds
    ub: np.ndarray  # [A]
    discrete: bool  # CartPole-v1: u in [-1, 1] -> env action int(u > 0), model input +-1

    @staticmethod
    def of(env: gym.Env, spec: EnvSpec) -> Actions:
        if spec.discrete:
            return Actions(np.array([-1.0]), np.array([1.0]), True)
        return Actions(env.action_space.low, env.action_space.high, False)

    @property
    def dim(self) -> int:
        return len(self.lb)

    def to_env(self, u: np.ndarray) -> Any:
        return int(u[0] > 0) if self.discrete else u

    def to_model(self, act: Tensor) -> Tensor:
        """Planner actions [..., A] as the model sees them (discrete: the executed +-1)."""
        return torch.where(act > 0, 1.0, -1.0) if self.discrete else act

    def stored(self, env_action: Any) -> np.ndarray:
        """One executed env action as a model input [A]."""
        if self.discrete:
            return np.array([1.0 if int(env_action) == 1 else -1.0], dtype=np.float32)
        return np.asarray(env_action, dtype=np.float32)

    def stored_batch(self, acts: np.ndarray) -> np.ndarray:
        """Evaluation-episode actions [T, A] (discrete: [T, 1] of 0/1) as model inputs."""
        return np.where(acts > 0.5, 1.0, -1.0).astype(np.float32) if self.discrete else acts


# ------------------------------------------------------------------- model stepping
class EnsembleDynamics:
    """All members at once on member-major particle batches: obs [E, M, D], act [E, M, A]
    -> sampled next_obs [E, M, D], reward [E, M] (Gaussian noise from the generator).

    The hot path of PETS (inference only): the input normaliser is folded into the first
    layer's weights, rows go through in cache-sized chunks, and each layer is one bmm with
    the bias added and SiLU applied in place (no autograd, no host sync)."""

    def __init__(self, model: ProbabilisticEnsemble) -> None:
        self.model, self.members = model, model.cfg.members

    def _layers(self) -> list[tuple[Tensor, Tensor]]:
        """(weight [E, in, out], bias [E, 1, out]) per layer, normaliser folded into the
        first: ((x - mu) / sd) W + b = x (W / sd) + (b - (mu / sd) W)."""
        m = self.model
        lins = m.mlp.linear_layers()
        w0 = lins[0].weight / m.in_std[:, None]  # [E, in, H]
        b0 = lins[0].bias - ((m.in_mean / m.in_std) @ lins[0].weight).unsqueeze(1)  # [E, 1, H]
        return [(w0, b0)] + [(lin.weight, lin.bias) for lin in lins[1:]]

    @torch.inference_mode()
    def __call__(self, obs: Tensor, act: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        m, layers = self.model, self._layers()
        x = torch.cat([obs, act], dim=-1)  # [E, M, in] raw
        out = torch.empty(*obs.shape[:2], m.out_dim, device=obs.device)  # [E, M, out]
        for s in range(0, obs.shape[1], _CHUNK):
            h = x[:, s : s + _CHUNK]  # [E, c, in]
            for w, b in layers[:-1]:
                h = F.silu(torch.bmm(h, w).add_(b), inplace=True)  # [E, c, H]
            w, b = layers[-1]
            mean, logvar = m.bound(torch.bmm(h, w).add_(b))  # [E, c, out] each
            noise = torch.randn(mean.shape, generator=gen, device=obs.device)
            out[:, s : s + _CHUNK] = noise.mul_(logvar.mul_(0.5).exp_()).add_(mean)
        return obs + out[..., 1:], out[..., 0]


class Propagator:
    """Returns of candidate action sequences under trajectory sampling (TS-inf / TS-1).

    `returns(obs [D], actions [N, H, A]) -> [N]`: the mean over `particles` particles of
    the summed rewards; particles are laid out member-major [E, N * K, .] (K = particles /
    E), so one call of `step` per horizon step covers every candidate, particle and member.
    """

    def __init__(
        self,
        step,  # EnsembleDynamics or a true-dynamics stand-in with the same signature
        particles: int,
        propagation: str,
        actions: Actions,
        reward_fn: RewardFn | None,  # None: the model's predicted reward
        termination: TerminationFn | None,
    ) -> None:
        self.step, self.E = step, step.members
        self.K = particles // self.E
        self.propagation, self.actions = propagation, actions
        self.reward_fn, self.termination = reward_fn, termination

    def _shuffle(self, x: Tensor, n: int, perm: Tensor) -> Tensor:
        """TS-1: permute each candidate's particles: x [E, n*K, ...] by perm [n, E*K]."""
        E, K, tail = self.E, self.K, x.shape[2:]
        by_cand = x.view(E, n, K, *tail).transpose(0, 1).reshape(n, E * K, *tail)
        idx = perm.view(n, E * K, *([1] * len(tail))).expand(-1, -1, *tail)
        mixed = by_cand.gather(1, idx)  # [n, E*K, ...]
        return mixed.view(n, E, K, *tail).transpose(0, 1).reshape(E, n * K, *tail)

    @torch.inference_mode()
    def returns(self, obs: Tensor, actions: Tensor, gen: torch.Generator) -> Tensor:
        E, K = self.E, self.K
        n, horizon, _ = actions.shape
        act = self.actions.to_model(actions)  # [n, H, A]
        # [E, n*K, H, A]: particle (e, i, k) of candidate i follows candidate i's actions.
        act = act.unsqueeze(1).expand(n, K, horizon, -1).reshape(1, n * K, horizon, -1)
        act = act.expand(E, -1, -1, -1)
        state = obs.to(torch.float32).expand(E, n * K, -1)  # [E, n*K, D]
        alive = torch.ones(E, n * K, dtype=torch.bool, device=obs.device)  # [E, n*K]
        total = torch.zeros(E, n * K, device=obs.device)  # [E, n*K]
        for h in range(horizon):
            if self.propagation == "ts1":
                perm = torch.rand(n, E * K, generator=gen, device=obs.device).argsort(1)
                state, alive = self._shuffle(state, n, perm), self._shuffle(alive, n, perm)
            a = act[:, :, h]  # [E, n*K, A]
            nxt, rew = self.step(state, a, gen)  # [E, n*K, D], [E, n*K]
            if self.reward_fn is not None:
                rew = self.reward_fn(state, a, nxt)
            total += torch.where(alive, rew, 0.0)
            if self.termination is not None:
                alive &= ~self.termination(nxt)
            state = nxt
        return total.view(E, n, K).mean(dim=(0, 2))  # [n]; NaN stays NaN (ranks worst)


# ---------------------------------------------------------------------------- state
class _ResetHook(gym.Wrapper):
    """Calls `on_reset` at every env reset, so the planner's warm start ends with the episode
    (handful-of-trials `MPC.reset` at the start of each rollout)."""

    def __init__(self, env: gym.Env, on_reset) -> None:
        super().__init__(env)
        self.on_reset = on_reset

    def reset(self, **kwargs):
        self.on_reset()
        return super().reset(**kwargs)


@dataclass
class PETSState:
    """All mutable training state of one run (checkpoint-ready: one object)."""

    model: ProbabilisticEnsemble
    real: ReplayBuffer
    planner: CEMPlanner  # training env
    eval_planner: CEMPlanner  # evaluation env, its own warm start
    propagator: Propagator
    actions: Actions
    period: dict[str, float] = field(default_factory=dict)  # current model period's train.csv row
    trained: bool = False


def _fresh_state(
    cfg: PETSConfig, spec: EnvSpec, actions: Actions, device: torch.device
) -> PETSState:
    model = ProbabilisticEnsemble(spec.obs_dim, actions.dim, cfg.model, device)
    reward_fn = KNOWN_REWARDS[spec.name] if cfg.reward == "known" else None
    prop = Propagator(
        EnsembleDynamics(model), cfg.particles, cfg.propagation, actions, reward_fn,
        spec.termination,
    )  # fmt: skip

    def planner() -> CEMPlanner:
        return CEMPlanner(cfg.horizon, actions.lb, actions.ub, cfg.cem, device)

    real = ReplayBuffer(cfg.total_steps, spec.obs_dim, actions.dim, device)
    return PETSState(model, real, planner(), planner(), prop, actions)


@torch.inference_mode()
def plan_action(
    st: PETSState, planner: CEMPlanner, obs: np.ndarray, gen: torch.Generator
) -> np.ndarray:
    """One MPC step: CEM over the model from `obs`; the first action [A] (numpy)."""
    o = torch.as_tensor(obs, dtype=torch.float32, device=st.real.device)
    return planner.act(lambda a: st.propagator.returns(o, a, gen), gen).cpu().numpy()


# ---------------------------------------------------------------------------- train
def train(
    cfg: PETSConfig,
    spec: EnvSpec,
    gens: Generators,
    device: torch.device,
    rec: Recorder,
    ckpt: Checkpointer | None = None,
) -> dict[str, float]:
    """Train PETS; returns the summary written to done.json.

    The loop (`algorithms.parts.loop.online_loop`), per env step t = 1..total_steps:
    1. act: uniform random during warm-up, else the CEM plan's first action (the planner
       warm-starts from its previous plan within an episode); step the training env;
       `store` the transition in the real buffer;
    2. `learn(t)`: every `model_train_freq` steps after warm-up (default: once per episode
       length), write the finished period's train.csv row and refit the ensemble on every
       real transition;
    3. every `eval_every` steps: evaluate the planner on the evaluation env (its own warm
       start), then `diagnose` (model diagnostics);
    4. at the first episode end after every `checkpoint_every` steps: a checkpoint.
    """
    validate(cfg, spec)
    freq = cfg.model_train_freq or spec.max_episode_steps
    rec.log(f"pets: model trained every {freq} env steps, after {cfg.warmup_steps} random")
    reduced = _reduced_budget(cfg)
    if reduced:
        rec.log(f"pets: planning budget below the paper's: {reduced}")
    env, eval_env = make_env_pair(spec, gens.seed)
    st, loop = resume(ckpt, gens, lambda: _fresh_state(cfg, spec, Actions.of(env, spec), device))
    env = _ResetHook(env, lambda: st.planner.reset())
    eval_env = _ResetHook(eval_env, lambda: st.eval_planner.reset())
    gen = gens.torch

    def policy(obs: np.ndarray, deterministic: bool) -> Any:
        # CEM is stochastic either way; the flag selects the env (and so the warm start).
        planner = st.eval_planner if deterministic else st.planner
        t0 = time.perf_counter()
        u = plan_action(st, planner, obs, gen)
        if not deterministic and st.trained:
            st.period["plan_wall_s"] += time.perf_counter() - t0
            st.period["planned_actions"] += 1
        return st.actions.to_env(u)

    def store(step, obs, act, rew, next_obs, terminated) -> None:
        st.real.add(obs, st.actions.stored(act), rew, next_obs, terminated)

    def flush() -> None:
        if st.trained:
            per_action = st.period["plan_wall_s"] / max(st.period["planned_actions"], 1)
            rec.train({**st.period, "plan_per_action_wall_s": per_action})

    def learn(t: int) -> None:
        if t < cfg.warmup_steps or (t - cfg.warmup_steps) % freq or t == cfg.total_steps:
            return  # (a model trained after the last step would never plan)
        flush()
        fit = _train_model(st, gen)
        st.period = {"step": t, **fit, "planned_actions": 0, "plan_wall_s": 0.0,
                     "diagnostics_wall_s": 0.0}  # fmt: skip
        st.trained = True

    def diagnose(t: int, episodes: list[Episode]) -> None:
        if not cfg.diagnostics.enabled or not st.trained:
            return
        start = time.perf_counter()
        for name, rows in model_diagnostics(cfg, st, episodes, t, gens).items():
            rec.table(name, rows)
        st.period["diagnostics_wall_s"] += time.perf_counter() - start

    summary = online_loop(
        cfg, env, eval_env, gens.seed, policy, store, learn, rec, diagnose,
        loop=loop, ckpt=ckpt, gens=gens, state=st,
    )  # fmt: skip
    flush()
    return summary


def _reduced_budget(cfg: PETSConfig) -> str:
    """The planning settings below handful-of-trials' (smoke/quick profiles), for the notes."""
    paper, cem = PETSConfig(), CEMConfig()
    pairs = [("particles", cfg.particles, paper.particles)] + [
        (f"cem.{k}", getattr(cfg.cem, k), getattr(cem, k))
        for k in ("population", "elites", "iterations")
    ]
    return ", ".join(f"{k} {v} (paper {p})" for k, v, p in pairs if v < p)


def _train_model(st: PETSState, gen: torch.Generator) -> dict[str, float]:
    """Retrain the ensemble on every real transition so far (handful-of-trials MPC.train)."""
    n, r = len(st.real), st.real
    t0 = time.perf_counter()
    fit = fit_ensemble(st.model, r.obs[:n], r.act[:n], r.next_obs[:n], r.rew[:n], gen)
    if not np.isfinite(fit["model_loss"]):
        raise DivergedError(f"non-finite model loss after {n} transitions")
    return {**fit, "model_train_wall_s": time.perf_counter() - t0, "real_size": n}


# ---------------------------------------------------------------------- diagnostics
class _ParticleStep:
    """`diagnostics.StepModel` that steps like PETS's particles: row i is a particle of
    member i % E for the whole rollout (TS-inf) or of a fresh random member per step (TS-1),
    with the member's Gaussian noise; rewards from the known function when PETS uses one."""

    def __init__(self, st: PETSState, propagation: str) -> None:
        self.model, self.propagation = st.model, propagation
        self.reward_fn = st.propagator.reward_fn

    def _reward(self, obs: Tensor, act: Tensor, nxt: Tensor, rew: Tensor) -> Tensor:
        return rew if self.reward_fn is None else self.reward_fn(obs, act, nxt)

    def predict_mean(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        nxt, rew = self.model.predict_mean(obs, act)
        return nxt, self._reward(obs, act, nxt, rew)

    @torch.inference_mode()
    def sample_step(self, obs: Tensor, act: Tensor, gen: torch.Generator):
        m, n = self.model, obs.shape[0]
        E = m.cfg.members
        if self.propagation == "ts_inf":
            member = torch.arange(n, device=obs.device) % E  # [n]
        else:
            member = torch.randint(E, (n,), generator=gen, device=obs.device)  # [n]
        nxt, rew, _ = m.member_step(obs, act, member, gen)  # [n, D], [n]
        return nxt, self._reward(obs, act, nxt, rew)


class _OpenLoop:
    """A 'policy' that replays planned action sequences [n, H, A], one step per call."""

    def __init__(self, plans: Tensor) -> None:
        self.plans, self.t = plans, 0

    def __call__(self, state: Tensor) -> Tensor:
        self.t += 1
        return self.plans[:, self.t - 1]


def model_diagnostics(
    cfg: PETSConfig, st: PETSState, episodes: list[Episode], t: int, gens: Generators
) -> dict[str, list[dict]]:
    """Rows of model.csv, compounding.csv and coadaptation.csv at env step t (module
    docstring); drawn from the diagnostics generators only."""
    d, gen, dev = cfg.diagnostics, gens.diag_torch, st.real.device

    def open_loop(segs: list[diag.Segment]) -> _OpenLoop:
        planner = CEMPlanner(cfg.horizon, st.actions.lb, st.actions.ub, cfg.cem, dev)
        plans = []
        for s in segs:  # a fresh plan (no warm start) from each segment's real start state
            o = torch.as_tensor(s.obs[0], dtype=torch.float32, device=dev)
            plans.append(planner.plan(lambda a, o=o: st.propagator.returns(o, a, gen), gen))
        return _OpenLoop(st.actions.to_model(torch.stack(plans)))  # [n, H, A]

    rows, _ = diag.model_measurements(
        _ParticleStep(st, cfg.propagation), open_loop, episodes, st.real,
        st.propagator.termination, d, gens, t, stored=st.actions.stored_batch,
    )  # fmt: skip
    return rows
