"""Pieces every training loop shares: the recorder interface the harness implements,
policy evaluation on the separate evaluation environment, and the run summary.

`algorithms` never writes files: loops report through a `Recorder`, and the harness
decides where rows go (the run directory's CSVs) and how progress is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class DivergedError(RuntimeError):
    """Training produced non-finite values; the run stops with status `failed: <reason>`."""


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
) -> dict[str, float]:
    """The interaction skeleton every online algorithm shares.

    Per env step: a uniform random action during warm-up (the env's seeded action space),
    else `policy(obs, False)` (stochastic); then `store(step, obs, act, rew, next_obs,
    terminated)` and `learn(t)`, t being the number of env steps taken. Every `eval_every`
    steps, `policy(obs, True)` (deterministic) is evaluated on `eval_env`. Truncation (time
    limit) resets the env but is not stored as a terminal. `diagnose(t, episodes)` gets
    each evaluation's episodes (model diagnostics). Closes both envs.
    """
    steps: list[int] = []
    means: list[float] = []
    obs, _ = env.reset(seed=seed)
    for step in range(cfg.total_steps):
        action = env.action_space.sample() if step < cfg.warmup_steps else policy(obs, False)
        next_obs, rew, terminated, truncated, _ = env.step(action)
        store(step, obs, action, float(rew), next_obs, bool(terminated))
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
        t = step + 1
        learn(t)
        if t % cfg.eval_every == 0:
            episodes = evaluate(lambda o: policy(o, True), eval_env, cfg.eval_episodes)
            rec.eval(t, [e.ret for e in episodes], [len(e) for e in episodes])
            steps.append(t)
            means.append(float(np.mean([e.ret for e in episodes])))
            if diagnose is not None:
                diagnose(t, episodes)
        rec.progress(t, cfg.total_steps, means[-1] if means else None)
    env.close()
    eval_env.close()
    return summarise(steps, means)


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
