"""Known reward functions for PETS's `reward: known` option, on the observation layout of
our gymnasium envs (v5 MuJoCo, CartPole-v1), vectorised over any leading dims.

Signature: reward(obs [..., D], act [..., A], next_obs [..., D]) -> [...]. Each is tested
against the env's own reward on real transitions (tests/test_pets.py).

PETS (kchua/handful-of-trials) uses known costs on its own env variants: HalfCheetah
`-obs[0] + 0.1 |a|^2` with obs[0] the finite-difference x velocity, Pusher an L1 cost on
tip-object and object-goal distances. Ours reproduce the rewards of *our* envs instead,
so learned and known rewards optimise the same objective that eval.csv reports:
- halfcheetah: `dx/dt - 0.1 |a|^2`; the env's dx/dt is the finite difference over the
  5 physics substeps of the root x position, which the observation drops (v5 default).
  The mean of the root x velocities before and after the step (obs[8], next_obs[8]) is the
  trapezoid estimate of it: not exact (tested to a stated tolerance);
- pusher: Pusher-v5 computes its reward after the step: -0.5 |tip - obj| - |obj - goal|
  (L2) - 0.1 |a|^2 on next_obs (exact);
- inverted_pendulum: 1 while the next state is healthy, 0 on the terminating step (exact);
- cartpole: 1 on every step, the terminating one included (exact).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from algorithms.parts.envs import inverted_pendulum_termination

RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def halfcheetah_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    x_velocity = 0.5 * (obs[..., 8] + next_obs[..., 8])  # trapezoid of root x velocity
    return x_velocity - 0.1 * act.square().sum(-1)


def pusher_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    tip, obj, goal = next_obs[..., 14:17], next_obs[..., 17:20], next_obs[..., 20:23]
    near = torch.linalg.vector_norm(obj - tip, dim=-1)
    dist = torch.linalg.vector_norm(obj - goal, dim=-1)
    return -0.5 * near - dist - 0.1 * act.square().sum(-1)


def inverted_pendulum_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    return (~inverted_pendulum_termination(next_obs)).to(next_obs.dtype)


def cartpole_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    return torch.ones(next_obs.shape[:-1], dtype=next_obs.dtype, device=next_obs.device)


KNOWN_REWARDS: dict[str, RewardFn] = {
    "halfcheetah": halfcheetah_reward,
    "pusher": pusher_reward,
    "inverted_pendulum": inverted_pendulum_reward,
    "cartpole": cartpole_reward,
}
