"""DQN (Mnih et al. 2015), the model-free Q-learner of the Dyna-Q CartPole study
(docs/ambiguities.md D1-D11), and the Q-learning machinery Dyna-Q shares with it.

One implementation serves both agents: the Q-network, its Adam optimiser, the hard-copied
target network, the epsilon schedule, the replay sampling and the update live here, and
`algorithms.dyna_q` only adds the dynamics model and the imagined transitions through the
`plan` hook of `run`. Both see the same real budget (`total_steps`, random warm-up
included) and make one Q update per real step after warm-up (recipe step 4).

Update (recipe step 4): squared Bellman error to `r + gamma (1 - done) max_a' Q_target(s',
a')`. Defaults are rl-baselines3-zoo's tuned SB3 DQN for CartPole-v1
(`hyperparams/dqn.yml`: net [256, 256], lr 2.3e-3, batch 64, buffer 100k, learning_starts
1000, gamma 0.99, exploration_fraction 0.16, final eps 0.04, train_freq 256 with
gradient_steps 128, target_update_interval 10) and SB3's DQN defaults (max_grad_norm 10,
eps from 1.0). Deviations: one gradient step per env step (the recipe) instead of 128 per
256; the recipe's squared error instead of SB3's Huber loss; the target is copied every
128 gradient steps, which is how often the zoo's setting refreshes it in effect (SB3 copies
every 10 *env* steps, during collection, so one copy lands between two 128-step training
phases). Copying every 10 gradient steps let Q exceed its bound 1 / (1 - gamma) = 100 on
CartPole and made Dyna-Q's Bellman loss diverge (docs/ambiguities.md).

Actions are stored as a float column holding the action index ([N, 1]), the layout of
`loop.Episode.act`, so the real buffer, the evaluation episodes and the diagnostics share
one representation; the dynamics model one-hot encodes them at its input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from algorithms.parts.buffer import Batch, ReplayBuffer
from algorithms.parts.envs import EnvSpec, make_env_pair
from algorithms.parts.loop import (
    Checkpointer,
    Episode,
    LoopConfig,
    LoopState,
    Recorder,
    UpdateStats,
    online_loop,
    resume,
)
from algorithms.parts.nets import EnsembleMLP
from algorithms.parts.seeding import Generators

# The CartPole recipe (ledger D1-D11): "the model-based agent reaches reward >= 195".
CLAIM_THRESHOLD = 195.0


@dataclass(frozen=True)
class QConfig:
    """The Q-learner shared by DQN and Dyna-Q (rl-baselines3-zoo dqn.yml, CartPole-v1)."""

    hidden: int = 256  # units per hidden layer (zoo: net_arch [256, 256])
    layers: int = 2
    lr: float = 2.3e-3  # Adam (zoo)
    batch_size: int = 64  # zoo
    gamma: float = 0.99  # zoo
    target_update_every: int = 128  # Q updates between hard target copies (see docstring)
    max_grad_norm: float = 10.0  # SB3 DQN default gradient clipping
    eps_start: float = 1.0  # SB3 exploration_initial_eps
    eps_end: float = 0.04  # zoo exploration_final_eps
    exploration_fraction: float = 0.16  # zoo: eps reaches eps_end after this share of the run

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "batch_size", "target_update_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"q.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not self.max_grad_norm > 0:
            raise ValueError(
                f"q.lr and q.max_grad_norm must be > 0, got {self.lr}, {self.max_grad_norm}"
            )
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"q.gamma must be in [0, 1], got {self.gamma}")
        for name in ("eps_start", "eps_end", "exploration_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"q.{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class DQNConfig(LoopConfig):
    """Budget of the CartPole study: 5,000 real transitions (the recipe, ledger D1), random
    warm-up included; evaluation every 500 steps with the recipe's 50 episodes each, so the last
    evaluation (at `total_steps`) is the recipe's 50-episode one."""

    total_steps: int = 5_000  # the recipe: "the same 5K real transitions"
    warmup_steps: int = 1_000  # uniform random actions first (zoo learning_starts)
    eval_every: int = 500
    eval_episodes: int = 50  # the recipe's evaluation (ledger D1-D11)
    replay_size: int = 100_000  # Q-buffer capacity (zoo buffer_size)
    q: QConfig = field(default_factory=QConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.replay_size < 1:
            raise ValueError(f"replay_size must be >= 1, got {self.replay_size}")
        if self.total_steps % self.eval_every:
            raise ValueError(
                f"total_steps={self.total_steps} must be a multiple of eval_every="
                f"{self.eval_every}, so the final evaluation is at the end of the budget"
            )


def epsilon(step: int, total_steps: int, q: QConfig) -> float:
    """SB3's linear schedule: eps_start -> eps_end over the first `exploration_fraction` of
    the run, counted from step 0 (warm-up actions are uniform whatever eps is)."""
    span = q.exploration_fraction * total_steps
    frac = min(step / span, 1.0) if span > 0 else 1.0
    return q.eps_start + frac * (q.eps_end - q.eps_start)


class QAgent(nn.Module):
    """Q-network, its target copy and Adam: obs [B, D] -> Q-values [B, n_actions]."""

    def __init__(self, obs_dim: int, n_actions: int, cfg: QConfig, device: torch.device) -> None:
        super().__init__()
        self.cfg, self.n_actions, self.device = cfg, n_actions, device
        # A single-member EnsembleMLP: one layer implementation for every network (nets.py).
        self.q = EnsembleMLP(1, obs_dim, n_actions, [cfg.hidden] * cfg.layers)
        self.q_target = EnsembleMLP(1, obs_dim, n_actions, [cfg.hidden] * cfg.layers)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        self.to(device)
        fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
        self.opt = torch.optim.Adam(self.q.parameters(), lr=cfg.lr, **fused)
        self.updates = 0  # gradient steps taken (drives the target copies)

    def values(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        net = self.q_target if target else self.q
        return net(obs.unsqueeze(0)).squeeze(0)  # [B, n_actions]

    @torch.no_grad()
    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy action indices as the stored float column: [B, D] -> [B, 1]."""
        return self.values(obs).argmax(-1, keepdim=True).to(torch.float32)

    @torch.no_grad()
    def act(self, obs: np.ndarray, eps: float, rng: np.random.Generator) -> int:
        """One environment action, eps-greedy (eps = 0: the deterministic policy)."""
        if eps > 0 and rng.random() < eps:
            return int(rng.integers(self.n_actions))
        o = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        return int(self.values(o).argmax())

    @torch.no_grad()
    def act_batch(self, obs: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
        """Eps-greedy actions for a batch of (imagined) states: [B, D] -> [B, 1] float."""
        act = self.greedy(obs)  # [B, 1]
        if eps > 0:
            b = obs.shape[0]
            explore = torch.rand(b, 1, generator=gen, device=obs.device) < eps  # [B, 1]
            rand = torch.randint(self.n_actions, (b, 1), generator=gen, device=obs.device)
            act = torch.where(explore, rand.to(torch.float32), act)
        return act

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on the squared Bellman error; hard target copy every
        `target_update_every` steps. Statistics stay tensors (no host sync)."""
        cfg = self.cfg
        with torch.no_grad():
            q_next = self.values(batch.next_obs, target=True).max(-1).values  # [B]
            y = batch.rew + cfg.gamma * (1.0 - batch.done) * q_next  # [B]
        q = self.values(batch.obs).gather(1, batch.act.long()).squeeze(1)  # [B]
        loss = F.mse_loss(q, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), cfg.max_grad_norm)
        self.opt.step()
        self.updates += 1
        if self.updates % cfg.target_update_every == 0:
            self.q_target.load_state_dict(self.q.state_dict())
        return {"q_loss": loss.detach(), "q_mean": q.detach().mean()}


@dataclass
class State:
    """All mutable training state of a DQN / Dyna-Q run (checkpoint-ready: this object and
    `gens` are the whole state). `q_buffer` is what the Q-learner samples; for DQN it is
    the real buffer itself, for Dyna-Q a second buffer holding real and imagined data."""

    agent: QAgent
    real: ReplayBuffer  # every real transition (act: index column [N, 1])
    q_buffer: ReplayBuffer
    stats: UpdateStats = field(default_factory=UpdateStats)  # means over an eval interval


def fresh_state(cfg: DQNConfig, spec: EnvSpec, device: torch.device) -> State:
    """DQN's state: the Q-learner samples the real buffer."""
    real = ReplayBuffer(cfg.total_steps, spec.obs_dim, 1, device)
    return State(QAgent(spec.obs_dim, spec.act_dim, cfg.q, device), real, real)


def check_discrete(spec: EnvSpec, algo: str) -> None:
    if not spec.discrete:
        raise ValueError(f"{algo} needs a discrete action space; {spec.name} is continuous")


def run(
    cfg: DQNConfig,
    spec: EnvSpec,
    gens: Generators,
    rec: Recorder,
    state: State,
    plan: Callable[[int, float], dict[str, float]] | None = None,
    row_extra: Callable[[], dict[str, float]] | None = None,
    diagnose: Callable[[int, list[Episode]], None] | None = None,
    loop: LoopState | None = None,
    ckpt: Checkpointer | None = None,
) -> dict[str, Any]:
    """The Q-learning loop both agents share (`algorithms.parts.loop.online_loop`), per
    real step t = 1..total_steps:
    1. act: uniform random during warm-up, else eps-greedy; step the env; `store` the
       transition in the real buffer (and, for Dyna-Q, in the Q-buffer);
    2. `learn(t)`, after warm-up: `plan(t, eps)` (Dyna-Q's model fits and imagined
       rollouts into the Q-buffer, returning statistics of the step; None for DQN), then
       one Q update on a Q-buffer batch; every `eval_every` steps one train.csv row: the
       interval's means of the update (and plan) statistics, plus `row_extra()`;
    3. every `eval_every` steps: evaluate the greedy policy on the evaluation env, then
       `diagnose` (Dyna-Q's model diagnostics);
    4. at the first episode end after every `checkpoint_every` steps: a checkpoint."""
    env, eval_env = make_env_pair(spec, gens.seed)
    agent, gen, rng = state.agent, gens.torch, gens.numpy

    def policy(obs: np.ndarray, deterministic: bool) -> int:
        # The loop's step count is real.size: every real step is stored.
        eps = 0.0 if deterministic else epsilon(len(state.real), cfg.total_steps, cfg.q)
        return agent.act(obs, eps, rng)

    def store(step, obs, act, rew, next_obs, terminated) -> None:
        a = np.asarray([act], dtype=np.float32)
        state.real.add(obs, a, rew, next_obs, terminated)
        if state.q_buffer is not state.real:
            state.q_buffer.add(obs, a, rew, next_obs, terminated)  # segment 0: real

    def learn(t: int) -> None:
        if t < cfg.warmup_steps:
            return
        planned = plan(t, epsilon(t, cfg.total_steps, cfg.q)) if plan is not None else {}
        update = agent.update(state.q_buffer.sample(cfg.q.batch_size, gen))
        state.stats.add({**update, **planned})
        if t % cfg.eval_every == 0:
            means = state.stats.means(t)  # raises DivergedError on non-finite values
            extra = row_extra() if row_extra is not None else {}
            eps = epsilon(t, cfg.total_steps, cfg.q)
            rec.train({"step": t, "q_updates": agent.updates, "epsilon": eps, **means, **extra})
            state.stats.clear()

    summary = online_loop(
        cfg, env, eval_env, gens.seed, policy, store, learn, rec, diagnose,
        loop=loop, ckpt=ckpt, gens=gens, state=state,
    )  # fmt: skip
    final = summary["final_return"]
    return {
        **summary,
        "real_transitions": len(state.real),
        "claim_threshold": CLAIM_THRESHOLD,
        "reaches_threshold": bool(math.isfinite(final) and final >= CLAIM_THRESHOLD),
    }


def train(
    cfg: DQNConfig,
    spec: EnvSpec,
    gens: Generators,
    device: torch.device,
    rec: Recorder,
    ckpt: Checkpointer | None = None,
) -> dict[str, Any]:
    """Train the model-free DQN baseline; returns the summary written to done.json."""
    check_discrete(spec, "dqn")
    state, loop = resume(ckpt, gens, lambda: fresh_state(cfg, spec, device))
    return run(cfg, spec, gens, rec, state, loop=loop, ckpt=ckpt)
