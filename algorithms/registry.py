"""The algorithms `mbrl-bench train --algo` knows: a config class with the paper's defaults
and a `train(cfg, spec, gens, device, recorder) -> summary` function for each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from algorithms import dqn, dyna_q, mbpo, pets, sac
from algorithms.weighting import WeightingConfig


@dataclass(frozen=True)
class Algorithm:
    name: str
    family: str  # key of the per-env block in config/hyperparameters.yaml
    description: str
    default_config: Callable[[], Any]  # -> frozen config dataclass with the paper defaults
    train: Callable[..., dict[str, float]]
    has_model: bool
    # Checks that need the environment (cfg, spec) -> None, raising ValueError.
    validate: Callable[[Any, Any], None] | None = None


def _pmac(**uses: bool) -> mbpo.MBPOConfig:
    """MBPO with PMAC's age weighting (for the model and the rollouts unless `uses` says)."""
    return mbpo.MBPOConfig(weighting=WeightingConfig(scheme="age", **uses))


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("sac", "sac", "Soft Actor-Critic, model-free baseline (real data only)",
                  sac.SACRunConfig, sac.train, has_model=False),
        Algorithm("mbpo", "mbpo", "MBPO: uniform real-buffer sampling for model and rollouts",
                  mbpo.MBPOConfig, mbpo.train, has_model=True),
        Algorithm("pmac", "mbpo", "PMAC: MBPO + policy-adaptation mixture (model and rollouts)",
                  _pmac, mbpo.train, has_model=True),
        Algorithm("pmac_model_only", "mbpo", "PMAC ablation (C.1): mixture for model training only",
                  lambda: _pmac(for_rollout=False), mbpo.train, has_model=True),
        Algorithm("pmac_rollout_only", "mbpo", "PMAC ablation (C.1): mixture for rollouts only",
                  lambda: _pmac(for_model=False), mbpo.train, has_model=True),
        Algorithm("dqn", "dqn", "DQN: model-free Q-learning on real transitions (CartPole study)",
                  dqn.DQNConfig, dqn.train, has_model=False),
        Algorithm("dyna_q", "dqn", "Dyna-Q: DQN + MLP dynamics model, K=25 rollouts of H=3",
                  dyna_q.DynaQConfig, dyna_q.train, has_model=True),
        Algorithm("dyna_q_adaptive", "dqn",
                  "Dyna-Q with a per-rollout horizon (<= 5) cut by 3-model disagreement",
                  dyna_q.adaptive_config, dyna_q.train, has_model=True),
        Algorithm("pets", "pets", "PETS: CEM planning over a probabilistic ensemble (TS-inf)",
                  pets.PETSConfig, pets.train, has_model=True, validate=pets.validate),
    )
}  # fmt: skip
