"""Per-environment random and reference returns for normalised scores (docs/statistics.md
"Metrics": `(return - random) / (reference - random)`), read from config/scores.yaml.

The random score is measured here (`python -m harness.analysis.scores ENV...`): the mean
undiscounted return of a uniformly random policy over 100 episodes of the environment as
the harness makes it (`algorithms.parts.envs.make_env`, same time limit), env and action space
seeded with 0. The reference is a published result, cited per environment in the YAML.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from algorithms.parts.envs import make_env, resolve_env
from harness.errors import ConfigError, read_mapping
from harness.job.config import CONFIG_DIR

RANDOM_EPISODES = 100
RANDOM_SEED = 0


@dataclass(frozen=True)
class EnvScores:
    """Random and reference return of one environment; reference None = not normalisable."""

    random: float
    reference: float | None

    def __post_init__(self) -> None:
        if self.reference is not None and self.reference <= self.random:
            raise ValueError(f"reference {self.reference} must exceed random {self.random}")

    def normalise(self, returns: np.ndarray) -> np.ndarray:
        if self.reference is None:
            return np.full_like(returns, np.nan, dtype=np.float64)
        return (returns - self.random) / (self.reference - self.random)


def load_scores() -> dict[str, EnvScores]:
    data = read_mapping(CONFIG_DIR / "scores.yaml")
    out = {}
    for env, entry in data.items():
        try:
            out[env] = EnvScores(float(entry["random"]["return"]), entry["reference"]["return"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"config/scores.yaml:{env}: {exc}") from exc
    return out


def random_return(env_name: str, episodes: int = RANDOM_EPISODES, seed: int = RANDOM_SEED):
    """(mean, std) return of the uniform random policy over `episodes` episodes."""
    env = make_env(resolve_env(env_name), seed)  # reset(seed) once, spaces seeded
    returns = []
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += float(r)
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))


if __name__ == "__main__":
    for name in sys.argv[1:]:
        mean, std = random_return(name)
        print(f"{name}: mean {mean!r} std {std!r} ({RANDOM_EPISODES} episodes, seed {RANDOM_SEED})")
