"""MBPO (Janner et al. 2019, "When to Trust Your Model") and PMAC on top of it.

Per env step: act in the real env, store the transition; every `model_train_freq` steps
train the probabilistic ensemble on the real buffer and branch `rollout_batch_size`
rollouts of the scheduled horizon from real start states into the model buffer; then
`updates_per_step` SAC updates on batches that are `real_ratio` real and the rest model
data. Evaluation runs the deterministic policy on a separate env instance.

PMAC (paper Algorithm 2) differs in one place, the weighting of the real buffer
(`cfg.weighting`, `algorithms.weighting`): its `age` scheme draws the model's training data
and/or the rollout start states by the policy-adaptation mixture of `algorithms.pmac`
instead of uniformly. The other schemes of the family (PDML's policy distance, PER, MaPER,
RECALL; PMAC paper Sec. 5.3) plug in at the same place. Everything else is shared.

Deviations from jannerm/mbpo, each recorded in docs/ambiguities.md: gymnasium -v5 envs;
correct termination functions; the model step assigns elites to rollout samples in
balanced random groups (see `ProbabilisticEnsemble.sample_step`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from algorithms.parts import diagnostics as diag
from algorithms.parts.buffer import ReplayBuffer
from algorithms.parts.ensemble import EnsembleConfig, ProbabilisticEnsemble
from algorithms.parts.envs import EnvSpec, make_env_pair
from algorithms.parts.fit import fit_ensemble
from algorithms.parts.loop import (
    Checkpointer,
    Episode,
    LoopConfig,
    Recorder,
    UpdateStats,
    online_loop,
    resume,
)
from algorithms.parts.seeding import Generators
from algorithms.pmac import segment_of_step, transition_weights
from algorithms.sac import SACAgent, SACConfig
from algorithms.weighting import (
    SEGMENTED,
    Replayed,
    Weighting,
    WeightingConfig,
    make_weighting,
)


@dataclass(frozen=True)
class MBPOConfig(LoopConfig):
    """MBPO hyperparameters; defaults are Hopper's (jannerm/mbpo examples/config/hopper),
    per-env values come from config/hyperparameters.yaml."""

    total_steps: int = 125_000  # MBPO paper, Hopper
    warmup_steps: int = 5_000  # uniform random actions (MBPO n_initial_exploration_steps)
    eval_every: int = 1_000  # PMAC paper: evaluate every 1k env steps
    eval_episodes: int = 5  # MBPO uses 1; more episodes give the statistics less noise
    epoch_length: int = 1_000  # env steps per epoch (the rollout schedule's unit)
    model_train_freq: int = 250  # env steps between model training + rollouts
    rollout_batch_size: int = 100_000  # rollout start states per model training
    rollout_schedule: tuple[int, int, int, int] = (20, 150, 1, 15)  # [a, b, x, y], D.1 order
    retain_epochs: int = 1  # epochs of model rollouts kept in the model buffer
    updates_per_step: int = 20  # SAC gradient steps per env step (UTD ratio)
    # Xingyu-Lin/mbpo_pytorch's `max_train_repeat_per_step` (5 there; 0 = off, as jannerm/mbpo):
    # a step's updates are skipped while the epoch's update count exceeds update_ramp x the
    # env steps since warm-up, so 20 updates/step become 5, 10, 15 and then 20 on average in
    # the first four epochs (docs/ambiguities.md #21).
    update_ramp: float = 0.0
    real_ratio: float = 0.05  # fraction of real data in each SAC batch
    deterministic_rollouts: bool = False  # jannerm/mbpo `deterministic`: elite means, no noise
    replay_size: int = 1_000_000  # real buffer capacity (PMAC Table 2)
    sac: SACConfig = field(default_factory=SACConfig)
    # Raw targets as jannerm/mbpo; InvertedPendulum standardises them (config/hyperparameters.yaml,
    # docs/ambiguities.md #17).
    model: EnsembleConfig = field(default_factory=EnsembleConfig)
    weighting: WeightingConfig = field(default_factory=WeightingConfig)  # uniform: MBPO
    diagnostics: diag.DiagnosticsConfig = field(default_factory=diag.DiagnosticsConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        a, b, x, y = self.rollout_schedule
        if not (0 <= a < b and 1 <= x and 1 <= y):
            raise ValueError(
                f"rollout_schedule [a, b, x, y] needs 0 <= a < b and horizons >= 1, "
                f"got {list(self.rollout_schedule)}"
            )
        if not 0.0 <= self.real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {self.real_ratio}")
        for name in ("epoch_length", "model_train_freq", "rollout_batch_size", "retain_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.updates_per_step < 0 or not self.update_ramp >= 0:
            raise ValueError(
                f"updates_per_step and update_ramp must be >= 0, got {self.updates_per_step}, "
                f"{self.update_ramp}"
            )


def rollout_horizon(epoch: int, schedule: tuple[int, int, int, int]) -> int:
    """MBPO's thresholded linear schedule (PMAC D.1): h = min(max(x + (e-a)/(b-a) (y-x), x), y),
    truncated to an int as in jannerm/mbpo."""
    a, b, x, y = schedule
    frac = min(max((epoch - a) / (b - a), 0.0), 1.0)
    return int(x + frac * (y - x))


def ramp_allows(epoch_updates: int, since_warmup: int, ramp: float) -> bool:
    """Xingyu-Lin/mbpo_pytorch `train_policy_repeats`: no updates at this step while the
    epoch's updates exceed `ramp` x the env steps since warm-up (ramp 0: always update)."""
    return not ramp or epoch_updates <= ramp * since_warmup


def model_buffer_capacity(cfg: MBPOConfig, horizon: int) -> int:
    """Rollouts of `retain_epochs` epochs (jannerm/mbpo `_set_rollout_length` sizing)."""
    trainings_per_epoch = max(cfg.epoch_length // cfg.model_train_freq, 1)
    return cfg.retain_epochs * trainings_per_epoch * cfg.rollout_batch_size * horizon


def mixed_batch_sizes(batch_size: int, real_ratio: float) -> tuple[int, int]:
    """(real, model) sample counts of one SAC batch; jannerm/mbpo truncates the real part."""
    n_real = int(batch_size * real_ratio)
    return n_real, batch_size - n_real


@torch.no_grad()
def branched_rollout(
    model: ProbabilisticEnsemble,
    agent: SACAgent,
    start_obs: torch.Tensor,
    horizon: int,
    spec: EnvSpec,
    model_buffer: ReplayBuffer,
    gen: torch.Generator,
    deterministic: bool = False,
) -> tuple[int, int]:
    """Roll the current stochastic policy in the model from start states [N, D] for up to
    `horizon` steps, storing every model transition; terminated branches stop. Returns the
    transitions added and how many of them terminated."""
    obs, added, terminated = start_obs, 0, 0
    for _ in range(horizon):
        act, _ = agent.actor.sample(obs, gen)
        next_obs, rew = model.sample_step(obs, act, gen, deterministic)
        if spec.termination is None:
            done = torch.zeros(obs.shape[0], dtype=torch.bool, device=obs.device)
        else:
            done = spec.termination(next_obs)
        model_buffer.add_batch(obs, act, rew, next_obs, done)
        added += obs.shape[0]
        keep = ~done
        obs = next_obs[keep]
        terminated += len(keep) - obs.shape[0]
        if obs.shape[0] == 0:
            break
    return added, terminated


@dataclass
class _RunState:
    """Everything an MBPO/PMAC run mutates (what a checkpoint stores)."""

    agent: SACAgent
    model: ProbabilisticEnsemble
    real: ReplayBuffer
    model_buf: ReplayBuffer
    weighting: Weighting  # the real buffer's weighting scheme and its state
    stats: UpdateStats  # SAC statistics of the current model period
    period: dict[str, float]  # the current model period's fit and rollout statistics
    epoch_updates: int = 0  # SAC updates so far in this epoch (for `update_ramp`)


def train(
    cfg: MBPOConfig,
    spec: EnvSpec,
    gens: Generators,
    device: torch.device,
    rec: Recorder,
    ckpt: Checkpointer | None = None,
) -> dict[str, float]:
    """Train one MBPO/PMAC run (MBPO paper Algorithm 2); returns the done.json summary.

    The loop (`algorithms.parts.loop.online_loop`), per env step t = 1..total_steps:
    1. act: uniform random during warm-up, else the SAC policy (stochastic); step the
       training env; `store` the transition in the real buffer with its policy segment
       (and show it to the weighting scheme);
    2. `learn(t)`, after warm-up: every `model_train_freq` steps, write the finished model
       period's train.csv row (`flush`), fit the model (on the weighting scheme's data:
       PMAC's mixture, uniform for MBPO) and refill the model buffer with branched
       rollouts (from the scheme's start states); then `updates_per_step` SAC updates on
       mixed real/model batches, whose real part the scheme sees (`replayed`);
    3. every `eval_every` steps: evaluate the deterministic policy on the evaluation env,
       then `diagnose` (model diagnostics on the evaluation episodes);
    4. at the first episode end after every `checkpoint_every` steps: a checkpoint.
    """
    if spec.discrete:
        raise ValueError(f"MBPO/PMAC need a continuous action space; {spec.name} is discrete")
    if spec.termination is None:
        rec.log(f"note: no termination function for {spec.name}: the model never terminates")
    env, eval_env = make_env_pair(spec, gens.seed)

    def fresh() -> _RunState:
        low, high = env.action_space.low, env.action_space.high
        capacity = model_buffer_capacity(cfg, rollout_horizon(0, cfg.rollout_schedule))
        real_capacity = min(cfg.replay_size, cfg.total_steps)
        return _RunState(
            agent=SACAgent(spec.obs_dim, spec.act_dim, low, high, cfg.sac, device),
            model=ProbabilisticEnsemble(spec.obs_dim, spec.act_dim, cfg.model, device),
            real=ReplayBuffer(real_capacity, spec.obs_dim, spec.act_dim, device),
            model_buf=ReplayBuffer(capacity, spec.obs_dim, spec.act_dim, device),
            weighting=make_weighting(
                cfg.weighting, real_capacity, spec.act_dim, cfg.warmup_steps, cfg.total_steps,
                device,
            ),
            stats=UpdateStats(),
            period={},
        )

    s, loop = resume(ckpt, gens, fresh)
    n_real, n_model = mixed_batch_sizes(cfg.sac.batch_size, cfg.real_ratio)
    w = cfg.weighting
    interval = w.adaptation_interval if w.scheme in SEGMENTED else cfg.model_train_freq
    gen = gens.torch

    def store(step, obs, act, rew, next_obs, terminated) -> None:
        seg = segment_of_step(step, cfg.warmup_steps, interval)
        pos = s.real.ptr
        s.real.add(obs, act, rew, next_obs, terminated, segment=seg)
        s.weighting.stored(pos, obs, act, seg, s.agent)

    def flush() -> None:
        if s.period:  # one train.csv row per model period: its fit, rollout and SAC means
            rec.train({**s.period, **s.stats.row(int(s.period["step"]))})
        s.stats.clear()

    def diagnose(t: int, episodes: list[Episode]) -> None:
        if not cfg.diagnostics.enabled or not s.period:  # no model trained yet
            return
        start = time.perf_counter()
        for name, rows in model_diagnostics(
            cfg, spec, s.model, s.agent, s.real, s.weighting, episodes, t, gens
        ).items():
            rec.table(name, rows)
        s.period["diagnostics_wall_s"] += time.perf_counter() - start

    def learn(t: int) -> None:
        if t < cfg.warmup_steps:
            return
        since = t - cfg.warmup_steps
        if since % cfg.epoch_length == 0:
            s.epoch_updates = 0
        if since % cfg.model_train_freq == 0:
            flush()
            fit = _train_model_and_rollout(
                cfg, spec, s.model, s.agent, s.real, s.model_buf, s.weighting, gen, t
            )
            s.period = {"step": t, **fit, "diagnostics_wall_s": 0.0}
        if len(s.model_buf) == 0 or not ramp_allows(s.epoch_updates, since, cfg.update_ramp):
            return
        s.epoch_updates += cfg.updates_per_step
        replayed = []
        for _ in range(cfg.updates_per_step):
            batch, real_idx = _mixed_batch(s.real, s.model_buf, n_real, n_model, gen)
            stats, q, y = s.agent.update(*batch, gen)
            s.stats.add(stats)
            replayed.append(Replayed(real_idx, q[:, :n_real], y[:n_real]))
        s.weighting.replayed(replayed, s.real, s.model)

    summary = online_loop(
        cfg, env, eval_env, gens.seed, lambda o, det: s.agent.act(o, gen, det), store, learn,
        rec, diagnose, loop=loop, ckpt=ckpt, gens=gens, state=s,
    )  # fmt: skip
    flush()
    return summary


def _train_model_and_rollout(
    cfg: MBPOConfig,
    spec: EnvSpec,
    model: ProbabilisticEnsemble,
    agent: SACAgent,
    real: ReplayBuffer,
    model_buf: ReplayBuffer,
    scheme: Weighting,
    gen: torch.Generator,
    t: int,
) -> dict[str, float]:
    """Algorithm 2 lines 2-4 and 7-10: fit the model, then refill the model buffer, each on
    the weighting scheme's data (computed once per model period; both uses draw from it)."""
    n, w = len(real), cfg.weighting
    t0 = time.perf_counter()
    probs, factors, summary = scheme.weights(real, agent, t)
    fit = fit_ensemble(
        model, real.obs[:n], real.act[:n], real.next_obs[:n], real.rew[:n], gen,
        probs if w.for_model else None, w.mode, factors if w.for_model else None,
    )  # fmt: skip
    t1 = time.perf_counter()
    epoch = (t - cfg.warmup_steps) // cfg.epoch_length
    horizon = rollout_horizon(epoch, cfg.rollout_schedule)
    model_buf.resize(model_buffer_capacity(cfg, horizon))
    if probs is None or not w.for_rollout:
        idx = real.sample_indices(cfg.rollout_batch_size, gen)
    else:
        idx = torch.multinomial(probs, cfg.rollout_batch_size, replacement=True, generator=gen)
    added, terminated = branched_rollout(
        model, agent, real.obs[idx], horizon, spec, model_buf, gen, cfg.deterministic_rollouts
    )
    t2 = time.perf_counter()
    return {
        **{k: float(v) for k, v in fit.items()},
        "rollout_horizon": horizon,
        "rollout_added": added,
        # Terminations per step in the model's rollouts vs in the real data of the last
        # model period (the policy's own recent transitions).
        "model_done_rate": terminated / max(added, 1),
        "real_done_rate": real.recent_done_rate(cfg.model_train_freq),
        "model_buffer_size": len(model_buf),
        "model_train_wall_s": t1 - t0,
        "rollout_wall_s": t2 - t1,
        **summary,
    }


def _mixed_batch(
    real: ReplayBuffer, model_buf: ReplayBuffer, n_real: int, n_model: int, gen: torch.Generator
):
    """SAC batch of n_real real and n_model model transitions (MBPO real_ratio), and the
    real part's buffer rows [n_real]."""
    idx = real.sample_indices(n_real, gen)
    r = real.gather(idx)
    m = model_buf.sample(n_model, gen)
    return tuple(torch.cat([a, b], dim=0) for a, b in zip(r, m, strict=True)), idx


def model_diagnostics(
    cfg: MBPOConfig,
    spec: EnvSpec,
    model: ProbabilisticEnsemble,
    agent: SACAgent,
    real: ReplayBuffer,
    scheme: Weighting,
    episodes: list[Episode],
    t: int,
    gens: Generators,
) -> dict[str, list[dict]]:
    """Rows of model.csv, compounding.csv, coadaptation.csv, visitation.csv and critic.csv
    at env step t, from this evaluation's episodes and the real buffer (see
    algorithms.parts.diagnostics).
    The `mixture` source of visitation.csv is PMAC's weighting of the real buffer; for the
    other schemes it is what PMAC (at `weighting.age.alpha`) would weight, for comparison
    (paper Fig. 1c/d). A scheme other than uniform and age adds its own weighting as a
    source named after it."""
    d, gen, dev = cfg.diagnostics, gens.diag_torch, real.device
    rows, (obs, act) = diag.model_measurements(
        model, lambda segs: agent.actor.deterministic, episodes, real, spec.termination, d,
        gens, t,
    )  # fmt: skip
    probs = transition_weights(real.segment[: len(real)], cfg.weighting.age.alpha)
    mix = torch.multinomial(probs, d.visitation_samples, replacement=True, generator=gen)
    uni = real.sample_indices(d.visitation_samples, gen)
    sources = {
        "policy": (torch.as_tensor(obs, device=dev), torch.as_tensor(act, device=dev)),
        "mixture": (real.obs[mix], real.act[mix]),
        "uniform": (real.obs[uni], real.act[uni]),
    }
    if cfg.weighting.scheme not in ("uniform", "age"):
        own = scheme.weights(real, agent, t).probs
        idx = torch.multinomial(own, d.visitation_samples, replacement=True, generator=gen)
        sources[cfg.weighting.scheme] = (real.obs[idx], real.act[idx])
    with torch.no_grad():
        q = {source: agent.q_values(o, a).min(0).values for source, (o, a) in sources.items()}
    rows["visitation"] = diag.visitation_rows(t, q, d.quantiles)
    c_obs, c_act, c_ret = diag.complete_returns(episodes, cfg.sac.gamma)
    if len(c_ret):
        with torch.no_grad():
            o, a = torch.as_tensor(c_obs, device=dev), torch.as_tensor(c_act, device=dev)
            q_c = agent.q_values(o, a).min(0).values
            entropy = -float(agent.actor.sample(o, gen)[1].mean())
        alpha = float(agent.log_alpha.detach().exp())
        rows["critic"] = [diag.critic_row(t, q_c, c_ret, alpha, entropy, cfg.sac.gamma)]
    return rows
