"""Soft Actor-Critic as used inside MBPO (Haarnoja et al. 2018; MBPO's softlearning SAC).

Tanh-squashed Gaussian actor, twin critics evaluated in one batched pass (`EnsembleMLP`
with 2 members), clipped double-Q targets from Polyak-averaged target critics, and an
automatically tuned temperature with a per-environment target entropy (MBPO configs), or a
fixed one (`autotune=False`, as Xingyu-Lin/mbpo_pytorch and mbrl-lib's MBPO configs).

Speed (see tests/test_benchmarks.py): the twin critics are one baddbmm per layer, the
actor's gradient is taken with `autograd.grad` w.r.t. the actor's parameters only (no
zeroing or toggling of critic grads), targets are updated with one fused `_foreach_lerp_`,
and nothing in `update` synchronises with the host: its statistics stay tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from algorithms.parts.buffer import ReplayBuffer
from algorithms.parts.envs import EnvSpec, make_env_pair
from algorithms.parts.loop import (
    Checkpointer,
    LoopConfig,
    Recorder,
    UpdateStats,
    online_loop,
    resume,
)
from algorithms.parts.nets import INITS, EnsembleMLP, Init
from algorithms.parts.seeding import Generators

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # softlearning / pranz24 bounds


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters (MBPO: jannerm/mbpo examples/config, PMAC Table 2)."""

    hidden: int = 256  # units per hidden layer, actor and critics
    layers: int = 2  # hidden layers (a "3-layer" MLP in PMAC Table 2)
    lr: float = 3e-4  # Adam, actor, critics and temperature
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 5e-3  # Polyak rate of the target critics
    target_entropy: float | None = None  # None: -act_dim (SAC paper heuristic)
    # Temperature: tuned towards target_entropy from `alpha` (softlearning: log_alpha = 0) or,
    # with autotune=False, fixed at `alpha` (Xingyu-Lin/mbpo_pytorch: 0.2, no tuning).
    autotune: bool = True
    alpha: float = 1.0
    init: Init = "torch"  # weight init (algorithms.parts.nets); softlearning/pranz24: "glorot"
    # Which critics the actor's loss sees (ledger #28): False, the stepped ones (pranz24 as in
    # mbrl-lib, SB3, CleanRL); True, the ones before their step, with the actor stepped first
    # (Xingyu-Lin/mbpo_pytorch, the PMAC paper's code base).
    actor_first: bool = False

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"sac.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"sac.gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"sac.tau must be in (0, 1], got {self.tau}")
        if not (self.lr > 0 and self.alpha > 0):
            raise ValueError(f"sac.lr and sac.alpha must be > 0, got {self.lr}, {self.alpha}")
        if self.init not in INITS:
            raise ValueError(f"sac.init must be one of {', '.join(INITS)}, got {self.init!r}")


class Actor(nn.Module):
    """obs [B, D] -> tanh-squashed Gaussian over actions scaled to the env's bounds."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig, low, high) -> None:
        super().__init__()
        # A single-member EnsembleMLP keeps one layer implementation for every network.
        self.net = EnsembleMLP(1, obs_dim, 2 * act_dim, [cfg.hidden] * cfg.layers, init=cfg.init)
        low = torch.as_tensor(low, dtype=torch.float32)
        high = torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("scale", (high - low) / 2.0)
        self.register_buffer("offset", (high + low) / 2.0)

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pre-tanh Gaussian: mean [B, A] and clamped log std [B, A] at obs [B, D]."""
        mean, log_std = self.net(obs.unsqueeze(0)).squeeze(0).chunk(2, dim=-1)  # [B, A] each
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised action [B, A] and its log-probability [B] (tanh-corrected)."""
        mean, log_std = self.dist_params(obs)
        std = log_std.exp()
        eps = torch.randn(mean.shape, generator=generator, device=mean.device)
        pre_tanh = mean + std * eps
        squashed = torch.tanh(pre_tanh)
        # log N(pre_tanh) - sum log(scale * (1 - tanh^2)), the stable softplus form.
        log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_det = 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))
        log_prob = log_prob - (log_det + torch.log(self.scale)).sum(-1)
        return squashed * self.scale + self.offset, log_prob

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self.dist_params(obs)
        return torch.tanh(mean) * self.scale + self.offset


class SACAgent(nn.Module):
    """Actor, twin critics, their targets, the temperature and their optimisers."""

    def __init__(
        self, obs_dim: int, act_dim: int, low, high, cfg: SACConfig, device: torch.device
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.actor = Actor(obs_dim, act_dim, cfg, low, high)
        hidden = [cfg.hidden] * cfg.layers
        self.critic = EnsembleMLP(2, obs_dim + act_dim, 1, hidden, init=cfg.init)
        self.critic_target = EnsembleMLP(2, obs_dim + act_dim, 1, hidden, init=cfg.init)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.alpha)))
        self.target_entropy = (
            float(-act_dim) if cfg.target_entropy is None else float(cfg.target_entropy)
        )
        self.to(device)
        self.device = device
        fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr, **fused)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, **fused)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.lr, **fused)
        self._actor_params = list(self.actor.parameters())
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

    def q_values(self, obs: torch.Tensor, act: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Both critics in one pass: [B, D], [B, A] -> [2, B]."""
        x = torch.cat([obs, act], dim=-1).unsqueeze(0).expand(2, -1, -1)  # [2, B, D+A]
        net = self.critic_target if target else self.critic
        return net(x).squeeze(-1)

    @torch.no_grad()
    def act(self, obs, generator: torch.Generator, deterministic: bool = False):
        """One environment action (numpy in, numpy out)."""
        o = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        a = self.actor.deterministic(o) if deterministic else self.actor.sample(o, generator)[0]
        return a.squeeze(0).cpu().numpy()

    def update(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        rew: torch.Tensor,
        next_obs: torch.Tensor,
        done: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """One gradient step of critics, actor and temperature on a batch ([B, ...]).

        Returns the step's statistics, and the critics' Q [2, B] and the target y [B] before
        the step (detached): the TD errors a prioritised weighting refreshes its priorities
        with (Schaul et al. 2016, Alg. 1 line 11)."""
        cfg = self.cfg
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            next_act, next_logp = self.actor.sample(next_obs, generator)
            q_next = self.q_values(next_obs, next_act, target=True).min(0).values  # [B]
            y = rew + cfg.gamma * (1.0 - done) * (q_next - alpha * next_logp)  # [B]
        q = self.q_values(obs, act)  # [2, B]
        critic_loss = (q - y).pow(2).mean(1).sum()  # sum of the twin MSEs
        if cfg.actor_first:
            actor_loss, logp = self._actor_step(obs, alpha, generator)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        if not cfg.actor_first:
            actor_loss, logp = self._actor_step(obs, alpha, generator)

        if cfg.autotune:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()

        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, cfg.tau)
        stats = {
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "alpha": alpha,
            "entropy": -logp.detach().mean(),
            "q_mean": q.detach().mean(),
        }
        return stats, q.detach(), y

    def _actor_step(
        self, obs: torch.Tensor, alpha: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step of the actor against the critics as they are now; returns the loss
        and the log-probabilities [B] of its sampled actions (for the temperature)."""
        new_act, logp = self.actor.sample(obs, generator)
        q_pi = self.q_values(obs, new_act).min(0).values
        actor_loss = (alpha * logp - q_pi).mean()
        grads = torch.autograd.grad(actor_loss, self._actor_params)  # the critics get none
        for p, g in zip(self._actor_params, grads, strict=True):
            p.grad = g
        self.actor_opt.step()
        return actor_loss, logp


@dataclass(frozen=True)
class SACRunConfig(LoopConfig):
    """The model-free SAC baseline: the same agent, trained on real data only."""

    total_steps: int = 125_000
    warmup_steps: int = 5_000  # uniform random actions first, as for MBPO
    eval_every: int = 1_000
    eval_episodes: int = 5
    updates_per_step: int = 1  # standard SAC (pranz24, used by the PMAC paper)
    replay_size: int = 1_000_000
    sac: SACConfig = field(default_factory=SACConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.updates_per_step < 0 or self.replay_size < 1:
            raise ValueError(
                f"updates_per_step must be >= 0 and replay_size >= 1, got "
                f"{self.updates_per_step}, {self.replay_size}"
            )


@dataclass
class _RunState:
    """Everything a SAC run mutates (what a checkpoint stores)."""

    agent: SACAgent
    real: ReplayBuffer
    stats: UpdateStats


def train(
    cfg: SACRunConfig,
    spec: EnvSpec,
    gens: Generators,
    device: torch.device,
    rec: Recorder,
    ckpt: Checkpointer | None = None,
) -> dict[str, float]:
    """Train the SAC baseline; returns the summary written to done.json.

    The loop (`algorithms.parts.loop.online_loop`), per env step t = 1..total_steps:
    1. act: uniform random during warm-up, else the policy (stochastic); step the training
       env; `store` the transition in the real buffer;
    2. `learn(t)`, after warm-up: `updates_per_step` SAC updates on real batches; every
       `eval_every` steps the interval's mean statistics go to train.csv;
    3. every `eval_every` steps: evaluate the deterministic policy on the evaluation env;
    4. at the first episode end after every `checkpoint_every` steps: a checkpoint.
    """
    if spec.discrete:
        raise ValueError(f"SAC needs a continuous action space; {spec.name} is discrete")
    env, eval_env = make_env_pair(spec, gens.seed)

    def fresh() -> _RunState:
        low, high = env.action_space.low, env.action_space.high
        return _RunState(
            SACAgent(spec.obs_dim, spec.act_dim, low, high, cfg.sac, device),
            ReplayBuffer(min(cfg.replay_size, cfg.total_steps), spec.obs_dim, spec.act_dim, device),
            UpdateStats(),
        )

    s, loop = resume(ckpt, gens, fresh)
    gen = gens.torch

    def store(step, obs, act, rew, next_obs, terminated) -> None:
        s.real.add(obs, act, rew, next_obs, terminated)

    def learn(t: int) -> None:
        if t < cfg.warmup_steps:
            return
        for _ in range(cfg.updates_per_step):
            s.stats.add(s.agent.update(*s.real.sample(cfg.sac.batch_size, gen), generator=gen)[0])
        if t % cfg.eval_every == 0 and s.stats.n:
            rec.train(s.stats.row(t))
            s.stats.clear()

    return online_loop(
        cfg, env, eval_env, gens.seed, lambda o, det: s.agent.act(o, gen, det), store, learn,
        rec, loop=loop, ckpt=ckpt, gens=gens, state=s,
    )  # fmt: skip
