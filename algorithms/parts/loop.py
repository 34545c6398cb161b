"""Pieces every training loop shares: the recorder interface the harness implements,
policy evaluation on the separate evaluation environment, and the run summary.

`algorithms` never writes files: loops report through a `Recorder`, and the harness
decides where rows go (the run directory's CSVs) and how progress is shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import gymnasium as gym
import numpy as np
import torch

from algorithms.parts.seeding import Generators

T = TypeVar("T")


class DivergedError(RuntimeError):
    """Training produced non-finite values; the run stops with status `failed: <reason>`."""


class UpdateStats:
    """Sums of per-update statistics (SAC's or the Q-learner's) kept as tensors, so nothing
    syncs with the host per update; `means` syncs once per row and raises DivergedError on
    non-finite values, so a diverging run stops with status `failed` instead of training
    on NaNs."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.n = 0

    def add(self, out: dict[str, torch.Tensor]) -> None:
        for k, v in out.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.n += 1

    def clear(self) -> None:
        self.sums.clear()
        self.n = 0

    def means(self, step: int) -> dict[str, float]:
        """The mean of every statistic over the updates since the last `clear`."""
        out = {k: float(v) / max(self.n, 1) for k, v in self.sums.items()}
        bad = [k for k, v in out.items() if not math.isfinite(v)]
        if bad:
            raise DivergedError(f"non-finite training statistics at step {step}: {', '.join(bad)}")
        return out

    def row(self, step: int) -> dict[str, float]:
        """SAC's train.csv columns: step, the number of updates, the means."""
        return {"step": step, "sac_updates": self.n, **self.means(step)}


class Recorder(Protocol):
    def eval(self, step: int, returns: list[float], lengths: list[int]) -> None:
        """Evaluation episodes finished at env step `step`."""

    def train(self, row: dict[str, Any]) -> None:
        """One row of training statistics (`step` first; wall-clock added by the recorder)."""

    def log(self, message: str) -> None:
        """A line for the run log (warnings, notes)."""

    def progress(self, step: int, total: int, last_return: float | None) -> None:
        """Called often; the recorder rate-limits what it prints."""

    def table(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Rows for another file of the run directory (`name`.csv), e.g. diagnostics."""


@dataclass(frozen=True)
class LoopConfig:
    """Budget and evaluation settings shared by the online algorithms."""

    total_steps: int  # real environment steps of the run (warm-up included)
    warmup_steps: int  # uniform random actions before learning starts
    eval_every: int  # env steps between evaluations (paper: 1000)
    eval_episodes: int  # deterministic-policy episodes per evaluation

    def __post_init__(self) -> None:
        if self.total_steps < 1 or self.eval_every < 1 or self.eval_episodes < 1:
            raise ValueError(
                "total_steps, eval_every and eval_episodes must be >= 1, got "
                f"{self.total_steps}, {self.eval_every}, {self.eval_episodes}"
            )
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(
                f"warmup_steps must be in [0, total_steps={self.total_steps}], "
                f"got {self.warmup_steps}"
            )


@dataclass
class Episode:
    """One evaluation episode of the deterministic policy on the evaluation env."""

    obs: np.ndarray  # [T + 1, D] observations, the last one after the final step
    act: np.ndarray  # [T, A]
    rew: np.ndarray  # [T]
    terminated: bool  # ended by the env's termination (not its time limit)

    @property
    def ret(self) -> float:
        return float(self.rew.sum())

    def __len__(self) -> int:
        return len(self.rew)


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray], env: gym.Env, episodes: int
) -> list[Episode]:
    """`episodes` episodes, each to the env's own time limit, kept whole so the model
    diagnostics can reuse them (they never feed a training buffer). `env` is the evaluation
    instance, separate from the training env (the bug of mbpo_pytorch the PMAC paper reports)."""
    out = []
    for _ in range(episodes):
        obs, _ = env.reset()
        traj_obs, traj_act, traj_rew = [obs], [], []
        done = terminated = False
        while not done:
            act = policy(obs)
            obs, rew, terminated, truncated, _ = env.step(act)
            traj_obs.append(obs)
            traj_act.append(np.asarray(act, dtype=np.float32).reshape(-1))
            traj_rew.append(float(rew))
            done = terminated or truncated
        out.append(
            Episode(
                np.asarray(traj_obs, dtype=np.float32),
                np.asarray(traj_act, dtype=np.float32),
                np.asarray(traj_rew, dtype=np.float64),
                bool(terminated),
            )
        )
    return out


@dataclass
class LoopState:
    """Where the interaction loop stands; checkpointed with the algorithm's state."""

    t: int = 0  # env steps taken
    obs: np.ndarray | None = None  # current training observation; None: reset before acting
    eval_steps: list[int] = field(default_factory=list)
    eval_means: list[float] = field(default_factory=list)
    last_checkpoint: int = 0  # env step of the latest checkpoint
    env_rng: dict[str, Any] | None = None  # the envs' random streams at that checkpoint


class Checkpointer(Protocol):
    """Where checkpoints live (implemented by the harness; algorithms write no files)."""

    every: int  # env steps between checkpoints; 0 disables them

    def load(self) -> dict[str, Any] | None:
        """The latest checkpoint's payload, or None to start fresh."""

    def save(self, payload: dict[str, Any]) -> None:
        """Store `payload` atomically (replacing the previous checkpoint)."""


def resume(
    ckpt: Checkpointer | None, gens: Generators, fresh: Callable[[], T]
) -> tuple[T, LoopState]:
    """The algorithm's state and the loop's: from the checkpoint if there is one (every
    random stream restored in place), else `fresh()` and a new loop."""
    payload = ckpt.load() if ckpt is not None else None
    if payload is None:
        return fresh(), LoopState()
    gens.restore(payload["gens"])
    return payload["algo"], payload["loop"]


def _env_rng(env: gym.Env) -> dict[str, Any]:
    return {
        "env": env.unwrapped.np_random.bit_generator.state,
        "action_space": env.action_space.np_random.bit_generator.state,
    }


def _set_env_rng(env: gym.Env, state: dict[str, Any]) -> None:
    env.unwrapped.np_random.bit_generator.state = state["env"]
    env.action_space.np_random.bit_generator.state = state["action_space"]


def online_loop(
    cfg: LoopConfig,
    env: gym.Env,
    eval_env: gym.Env,
    seed: int,
    policy: Callable[[np.ndarray, bool], np.ndarray],
    store: Callable[[int, np.ndarray, np.ndarray, float, np.ndarray, bool], None],
    learn: Callable[[int], None],
    rec: Recorder,
    diagnose: Callable[[int, list[Episode]], None] | None = None,
    *,
    loop: LoopState | None = None,
    ckpt: Checkpointer | None = None,
    gens: Generators | None = None,
    state: Any = None,
) -> dict[str, float]:
    """The interaction skeleton every online algorithm shares.

    Per env step: a uniform random action during warm-up (the env's seeded action space),
    else `policy(obs, False)` (stochastic); then `store(step, obs, act, rew, next_obs,
    terminated)` and `learn(t)`, t being the number of env steps taken. Every `eval_every`
    steps, `policy(obs, True)` (deterministic) is evaluated on `eval_env`. Truncation (time
    limit) resets the env but is not stored as a terminal. `diagnose(t, episodes)` gets
    each evaluation's episodes (model diagnostics). Closes both envs.

    Checkpoints (`ckpt`, with the run's `gens` and the algorithm's `state`, from `resume`)
    are taken at the first episode boundary after every `ckpt.every` env steps: between
    episodes the envs' whole state is their random streams (the next reset re-creates the
    simulator state from them), so a resumed run continues bit for bit.
    """
    loop = loop if loop is not None else LoopState()
    if loop.env_rng is not None:  # resuming: envs continue their streams
        _set_env_rng(env, loop.env_rng["train"])
        _set_env_rng(eval_env, loop.env_rng["eval"])
    while loop.t < cfg.total_steps:
        step = loop.t
        if loop.obs is None:
            loop.obs, _ = env.reset(seed=seed) if step == 0 else env.reset()
        obs = loop.obs
        action = env.action_space.sample() if step < cfg.warmup_steps else policy(obs, False)
        next_obs, rew, terminated, truncated, _ = env.step(action)
        store(step, obs, action, float(rew), next_obs, bool(terminated))
        loop.obs = None if terminated or truncated else next_obs
        t = loop.t = step + 1
        learn(t)
        if t % cfg.eval_every == 0:
            episodes = evaluate(lambda o: policy(o, True), eval_env, cfg.eval_episodes)
            rec.eval(t, [e.ret for e in episodes], [len(e) for e in episodes])
            loop.eval_steps.append(t)
            loop.eval_means.append(float(np.mean([e.ret for e in episodes])))
            if diagnose is not None:
                diagnose(t, episodes)
        rec.progress(t, cfg.total_steps, loop.eval_means[-1] if loop.eval_means else None)
        if (
            ckpt is not None
            and ckpt.every > 0
            and loop.obs is None
            and t < cfg.total_steps
            and t // ckpt.every > loop.last_checkpoint // ckpt.every
        ):
            if gens is None:
                raise ValueError("checkpointing needs the run's generators (gens=...)")
            loop.last_checkpoint = t
            loop.env_rng = {"train": _env_rng(env), "eval": _env_rng(eval_env)}
            ckpt.save({"algo": state, "loop": loop, "gens": gens.state()})
    env.close()
    eval_env.close()
    return summarise(loop.eval_steps, loop.eval_means)


def summarise(eval_steps: list[int], eval_means: list[float]) -> dict[str, float]:
    """Final return (last evaluation) and the normalised area under the learning curve
    (trapezoid over env steps divided by the step span, i.e. the curve's mean height)."""
    if not eval_means:
        return {"final_return": float("nan"), "auc": float("nan")}
    steps = np.asarray(eval_steps, dtype=np.float64)
    means = np.asarray(eval_means, dtype=np.float64)
    span = steps[-1] - steps[0]
    auc = float(np.trapezoid(means, steps) / span) if span > 0 else float(means[0])
    return {"final_return": float(means[-1]), "auc": auc}
