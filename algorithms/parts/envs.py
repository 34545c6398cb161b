"""The named environments of the PMAC/MBPO benchmark and their termination functions.

Model-based agents (MBPO, PMAC, PETS) roll the learned dynamics model forward and must decide,
from a *predicted* next observation alone, whether the episode would have ended. This module
gives every named environment a vectorised torch function ``next_obs [B, D] -> bool [B]`` that
reproduces the real environment's own ``terminated`` flag exactly, with the constants encoded
here (each citing the gymnasium v5 default it mirrors) instead of read from private env
attributes at rollout time.

Deliberate departures from the MBPO reference code:

* MBPO's Hopper check ``np.abs(next_obs[:, 1:] < 100)`` takes the absolute value of a *boolean*,
  so it only enforces the upper bound of the healthy state range; a prediction of -150 passes.
  That bug is not copied: the full open interval (-100, 100) is checked, as the env does.
* The paper used the mujoco-py ``-v2`` environments; we use gymnasium's maintained ``-v5``
  versions (same robots and healthy ranges; Ant and Humanoid are given MBPO's truncated
  observations, 27 and 45 dims, through the v5 ``include_*_in_observation`` flags).

Exactness notes (all verified against the real environments in ``tests/test_envs.py``):

* Comparisons are made in float64, as the envs compare float64 states with float64 constants.
  CartPole returns ``float32(state)``, so the one observation value per threshold that equals
  ``float32(threshold)`` is ambiguous (~10% of the float64 states rounding to it lie on the
  other side); every other float32 value is decided exactly.
* Hopper also requires ``|state[2:]| < 100`` on the *unclipped* joint velocities, while its
  observation clips velocities to [-10, 10]. A real state with some ``|qvel| >= 100`` therefore
  shows up as a healthy-looking ``+-10`` and cannot be recognised from the observation. Such
  velocities do not occur under random or perturbed policies (max ~20), and a dynamics model
  trained on clipped observations cannot represent them; model predictions outside (-100, 100)
  are still caught. Walker2d-v5 has no state-range check, so its clipping is irrelevant.
* NaN handling follows each env's comparisons: ``not (lo < z < hi)`` is True for NaN (Hopper,
  Walker2d, Humanoid terminate), Ant and InvertedPendulum check finiteness explicitly, while
  CartPole's ``x < -2.4 or x > 2.4 ...`` is False for NaN (it does not terminate).
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import torch

TerminationFn = Callable[[torch.Tensor], torch.Tensor]  # next_obs [B, D] -> bool [B]

# --- Constants, copied from the gymnasium 1.x v5 defaults (obs indices assume the default
# exclude_current_positions_from_observation=True, i.e. the x (and y) root position is dropped).
HOPPER_OBS_DIM = 11  # qpos[1:] (5) + clip(qvel, -10, 10) (6)
HOPPER_HEALTHY_Z_RANGE = (0.7, math.inf)  # Hopper-v5 healthy_z_range; z = qpos[1] = obs[0]
HOPPER_HEALTHY_ANGLE_RANGE = (-0.2, 0.2)  # Hopper-v5 healthy_angle_range; qpos[2] = obs[1]
HOPPER_HEALTHY_STATE_RANGE = (-100.0, 100.0)  # Hopper-v5 healthy_state_range; state[2:]=obs[1:]

WALKER2D_OBS_DIM = 17  # qpos[1:] (8) + clip(qvel, -10, 10) (9)
WALKER2D_HEALTHY_Z_RANGE = (0.8, 2.0)  # Walker2d-v5 healthy_z_range; z = obs[0]
WALKER2D_HEALTHY_ANGLE_RANGE = (-1.0, 1.0)  # Walker2d-v5 healthy_angle_range; angle = obs[1]

ANT_OBS_DIM = 27  # qpos[2:] (13) + qvel (14); include_cfrc_ext_in_observation=False
ANT_HEALTHY_Z_RANGE = (0.2, 1.0)  # Ant-v5 healthy_z_range, *inclusive*; z = qpos[2] = obs[0]

HUMANOID_OBS_DIM = 45  # qpos[2:] (22) + qvel (23); cinert/cvel/qfrc_actuator/cfrc_ext excluded
HUMANOID_HEALTHY_Z_RANGE = (1.0, 2.0)  # Humanoid-v5 healthy_z_range, strict; z = obs[0]

INVERTED_PENDULUM_OBS_DIM = 4  # qpos (cart, hinge) + qvel
INVERTED_PENDULUM_MAX_ANGLE = 0.2  # InvertedPendulum-v5: terminated if |obs[1]| > 0.2

CARTPOLE_OBS_DIM = 4  # (x, x_dot, theta, theta_dot), float32
CARTPOLE_X_THRESHOLD = 2.4  # CartPole-v1 x_threshold; x = obs[0]
CARTPOLE_THETA_THRESHOLD = 12 * 2 * math.pi / 360  # CartPole-v1 theta_threshold_radians; obs[2]


def _as_f64(next_obs: torch.Tensor, dim: int, env: str) -> torch.Tensor:
    if next_obs.ndim < 1 or next_obs.shape[-1] != dim:
        raise ValueError(
            f"{env} termination expects next_obs of shape [B, {dim}], got {tuple(next_obs.shape)}"
        )
    return next_obs.to(torch.float64)


def _inside(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """lo < x < hi, False for NaN (the envs' ``min < v < max``)."""
    return (x > lo) & (x < hi)


def never_terminates(next_obs: torch.Tensor) -> torch.Tensor:
    """HalfCheetah-v5 and Pusher-v5 never set ``terminated`` (episodes end by time limit)."""
    return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


def hopper_termination(next_obs: torch.Tensor) -> torch.Tensor:
    """Hopper-v5 ``not is_healthy``: z in (0.7, inf), angle in (-0.2, 0.2), and every entry of
    state[2:] (joint angles and velocities, obs[1:]) in (-100, 100); see the module notes on
    clipped velocities."""
    obs = _as_f64(next_obs, HOPPER_OBS_DIM, "hopper")
    healthy = (
        _inside(obs[..., 0], *HOPPER_HEALTHY_Z_RANGE)
        & _inside(obs[..., 1], *HOPPER_HEALTHY_ANGLE_RANGE)
        & _inside(obs[..., 1:], *HOPPER_HEALTHY_STATE_RANGE).all(dim=-1)
    )
    return ~healthy


def walker2d_termination(next_obs: torch.Tensor) -> torch.Tensor:
    """Walker2d-v5 ``not is_healthy``: z in (0.8, 2.0) and angle in (-1, 1), strict."""
    obs = _as_f64(next_obs, WALKER2D_OBS_DIM, "walker2d")
    healthy = _inside(obs[..., 0], *WALKER2D_HEALTHY_Z_RANGE) & _inside(
        obs[..., 1], *WALKER2D_HEALTHY_ANGLE_RANGE
    )
    return ~healthy


def ant_termination(next_obs: torch.Tensor) -> torch.Tensor:
    """Ant-v5 ``not is_healthy``: the state is finite and 0.2 <= z <= 1.0 (inclusive). The env
    also checks the x, y root position, which the observation drops; they are integrals of
    finite velocities, so this cannot differ in practice."""
    obs = _as_f64(next_obs, ANT_OBS_DIM, "ant")
    z = obs[..., 0]
    lo, hi = ANT_HEALTHY_Z_RANGE
    healthy = torch.isfinite(obs).all(dim=-1) & (z >= lo) & (z <= hi)
    return ~healthy


def humanoid_termination(next_obs: torch.Tensor) -> torch.Tensor:
    """Humanoid-v5 ``not is_healthy``: z in (1.0, 2.0), strict (nothing else is checked)."""
    obs = _as_f64(next_obs, HUMANOID_OBS_DIM, "humanoid")
    return ~_inside(obs[..., 0], *HUMANOID_HEALTHY_Z_RANGE)


def inverted_pendulum_termination(next_obs: torch.Tensor) -> torch.Tensor:
    """InvertedPendulum-v5: non-finite observation or |hinge angle| > 0.2."""
    obs = _as_f64(next_obs, INVERTED_PENDULUM_OBS_DIM, "inverted_pendulum")
    return ~torch.isfinite(obs).all(dim=-1) | (obs[..., 1].abs() > INVERTED_PENDULUM_MAX_ANGLE)


def cartpole_termination(next_obs: torch.Tensor) -> torch.Tensor:
    """CartPole-v1: x outside [-2.4, 2.4] or theta outside [-12 deg, 12 deg]; NaN does not
    terminate (the env's strict comparisons are all False)."""
    obs = _as_f64(next_obs, CARTPOLE_OBS_DIM, "cartpole")
    x, theta = obs[..., 0], obs[..., 2]
    return (
        (x < -CARTPOLE_X_THRESHOLD)
        | (x > CARTPOLE_X_THRESHOLD)
        | (theta < -CARTPOLE_THETA_THRESHOLD)
        | (theta > CARTPOLE_THETA_THRESHOLD)
    )


class _FrozenKwargs(Mapping[str, Any]):
    """Read-only kwargs (specs are cached and shared) that, unlike MappingProxyType, can be
    pickled and deep-copied (multiprocessing, dataclasses.asdict)."""

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)


@dataclass(frozen=True)
class EnvSpec:
    """Everything the harness needs to build an environment and roll its model out."""

    name: str  # our short name, or the gymnasium id for unnamed envs
    gym_id: str
    kwargs: Mapping[str, Any] = field(hash=False)  # passed to gymnasium.make (read-only)
    termination: TerminationFn | None  # None = unknown env: "never terminates" in the model
    obs_dim: int
    act_dim: int  # for Discrete action spaces: the number of actions
    discrete: bool
    max_episode_steps: int


@dataclass(frozen=True)
class _Named:
    gym_id: str
    kwargs: Mapping[str, Any]
    termination: TerminationFn
    obs_dim: int  # checked against the made env, so the termination indices stay valid


_NAMED: dict[str, _Named] = {
    "hopper": _Named("Hopper-v5", {}, hopper_termination, HOPPER_OBS_DIM),
    "halfcheetah": _Named("HalfCheetah-v5", {}, never_terminates, 17),
    "walker2d": _Named("Walker2d-v5", {}, walker2d_termination, WALKER2D_OBS_DIM),
    "ant": _Named(
        "Ant-v5", {"include_cfrc_ext_in_observation": False}, ant_termination, ANT_OBS_DIM
    ),
    "humanoid": _Named(
        "Humanoid-v5",
        {
            "include_cinert_in_observation": False,
            "include_cvel_in_observation": False,
            "include_qfrc_actuator_in_observation": False,
            "include_cfrc_ext_in_observation": False,
        },
        humanoid_termination,
        HUMANOID_OBS_DIM,
    ),
    "pusher": _Named("Pusher-v5", {}, never_terminates, 23),
    "inverted_pendulum": _Named(
        "InvertedPendulum-v5", {}, inverted_pendulum_termination, INVERTED_PENDULUM_OBS_DIM
    ),
    "cartpole": _Named("CartPole-v1", {}, cartpole_termination, CARTPOLE_OBS_DIM),
}

ENV_NAMES: tuple[str, ...] = tuple(_NAMED)


@functools.cache  # = lru_cache(maxsize=None)
def resolve_env(name: str) -> EnvSpec:
    """Spec of a named environment (``ENV_NAMES``) or of any registered gymnasium id.

    A gymnasium id that is exactly one of the named envs with default kwargs (e.g.
    "Hopper-v5") gets that env's termination function; any other id (e.g. "Swimmer-v5", or
    "Ant-v5" with its full 105-dim observation: use "ant" for MBPO's) gets ``termination=None``.
    Cached, because the dimensions are read from a made env.
    """
    if name in _NAMED:
        named = _NAMED[name]
        gym_id, kwargs, termination = named.gym_id, dict(named.kwargs), named.termination
        expected_obs_dim: int | None = named.obs_dim
    elif ":" in name:  # gymnasium's "module:EnvId": the module registers EnvId on import
        module, _, env_id = name.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"{name!r}: cannot import module {module!r} ({exc})") from exc
        if env_id not in gymnasium.registry:
            raise ValueError(f"{name!r}: module {module} registers no environment {env_id!r}")
        gym_id, kwargs, expected_obs_dim, termination = name, {}, None, None
    elif name in gymnasium.registry:
        gym_id, kwargs, expected_obs_dim = name, {}, None
        termination = next(
            (n.termination for n in _NAMED.values() if n.gym_id == name and not n.kwargs), None
        )
    else:
        raise ValueError(
            f"unknown environment {name!r}; known: {', '.join(ENV_NAMES)}, "
            "any registered gymnasium id, or module:EnvId"
        )

    env = gymnasium.make(gym_id, **kwargs)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        max_steps = env.spec.max_episode_steps if env.spec is not None else None
    finally:
        env.close()
    if not (isinstance(obs_space, gymnasium.spaces.Box) and len(obs_space.shape) == 1):
        raise ValueError(f"{name!r}: need a flat Box observation space, got {obs_space}")
    obs_dim = int(obs_space.shape[0])
    if isinstance(act_space, gymnasium.spaces.Discrete):
        act_dim, discrete = int(act_space.n), True
    elif isinstance(act_space, gymnasium.spaces.Box) and len(act_space.shape) == 1:
        act_dim, discrete = int(act_space.shape[0]), False
    else:
        raise ValueError(f"{name!r}: need a flat Box or Discrete action space, got {act_space}")
    if max_steps is None:
        raise ValueError(f"{name!r}: gymnasium registers no max_episode_steps for {gym_id}")
    if expected_obs_dim is not None and obs_dim != expected_obs_dim:
        raise RuntimeError(
            f"{name}: {gym_id} with {kwargs} has obs_dim {obs_dim}, expected {expected_obs_dim} "
            "(the termination function's observation indices assume that layout)"
        )
    return EnvSpec(
        name=name,
        gym_id=gym_id,
        kwargs=_FrozenKwargs(kwargs),
        termination=termination,
        obs_dim=obs_dim,
        act_dim=act_dim,
        discrete=discrete,
        max_episode_steps=int(max_steps),
    )


def make_env(spec: EnvSpec, seed: int) -> gymnasium.Env:
    """Make the environment (with its registered TimeLimit) and seed it once.

    The env is reset with ``seed`` here, so episodes are started with plain ``env.reset()``
    afterwards and the whole sequence of initial states is determined by ``seed``; the action
    and observation spaces are seeded too. The caller uses a *different* seed for the
    evaluation env than for the training env, so their initial states are not the same stream.
    """
    env = gymnasium.make(spec.gym_id, **spec.kwargs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    return env


EVAL_SEED_OFFSET = 10_000  # the evaluation env's seed: the run's seed + this


def make_env_pair(spec: EnvSpec, seed: int) -> tuple[gymnasium.Env, gymnasium.Env]:
    """(training env, evaluation env) of a run with seed `seed`: two instances seeded apart,
    so evaluation never steps the training env (the bug of mbpo_pytorch the PMAC paper
    reports) and their initial states are different streams."""
    return make_env(spec, seed), make_env(spec, seed + EVAL_SEED_OFFSET)


__all__ = [
    "ENV_NAMES",
    "EnvSpec",
    "TerminationFn",
    "make_env",
    "resolve_env",
    "never_terminates",
    "hopper_termination",
    "walker2d_termination",
    "ant_termination",
    "humanoid_termination",
    "inverted_pendulum_termination",
    "cartpole_termination",
]
