"""FIFO replay buffer of preallocated tensors on the run's device.

One class serves the real buffer (which also records the PMAC segment of every transition)
and the model buffer of MBPO rollouts (filled a batch at a time). Sampling draws indices
with an explicit generator and gathers on the device: no per-sample Python work.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Batch(NamedTuple):
    obs: torch.Tensor  # [B, D]
    act: torch.Tensor  # [B, A]
    rew: torch.Tensor  # [B]
    next_obs: torch.Tensor  # [B, D]
    done: torch.Tensor  # [B] float, 1.0 where the episode terminated (not truncated)


_FIELDS = ("obs", "act", "rew", "next_obs", "done", "segment")


class ReplayBuffer:
    """Ring buffer with capacity `capacity`; the oldest transitions are overwritten."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity, self.device = capacity, device
        f32 = dict(dtype=torch.float32, device=device)
        self.obs = torch.zeros(capacity, obs_dim, **f32)  # [C, D]
        self.act = torch.zeros(capacity, act_dim, **f32)  # [C, A]
        self.rew = torch.zeros(capacity, **f32)  # [C]
        self.next_obs = torch.zeros(capacity, obs_dim, **f32)  # [C, D]
        self.done = torch.zeros(capacity, **f32)  # [C]
        self.segment = torch.zeros(capacity, dtype=torch.long, device=device)  # [C]
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def recent_done_rate(self, k: int) -> float:
        """Share of terminal transitions among the newest min(k, len) (nan when empty)."""
        n = min(k, self.size)
        if n == 0:
            return float("nan")
        idx = (self.ptr - 1 - torch.arange(n, device=self.device)) % self.capacity
        return float(self.done[idx].mean())

    def __getstate__(self) -> dict:
        """Pickle (checkpoints) only the filled rows: a model buffer is mostly empty early on."""
        state = self.__dict__.copy()
        for name in _FIELDS:
            state[name] = getattr(self, name)[: self.size].clone()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name in _FIELDS:
            filled = state[name]
            full = torch.zeros(self.capacity, *filled.shape[1:], dtype=filled.dtype)
            full[: self.size] = filled
            setattr(self, name, full.to(self.device))

    def add_batch(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        rew: torch.Tensor,
        next_obs: torch.Tensor,
        done: torch.Tensor,
        segment: int = 0,
    ) -> None:
        """Append B transitions ([B, ...] tensors); wraps around when full."""
        n = obs.shape[0]
        if n > self.capacity:  # only the newest `capacity` survive anyway
            obs, act, rew, next_obs, done = (
                t[-self.capacity :] for t in (obs, act, rew, next_obs, done)
            )
            n = self.capacity
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        self.obs[idx] = obs
        self.act[idx] = act
        self.rew[idx] = rew
        self.next_obs[idx] = next_obs
        self.done[idx] = done.to(torch.float32)
        self.segment[idx] = segment
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def add(self, obs, act, rew: float, next_obs, done: bool, segment: int = 0) -> None:
        """Append one transition from the environment (numpy arrays or tensors)."""
        i = self.ptr
        self.obs[i] = torch.as_tensor(obs, dtype=torch.float32)
        self.act[i] = torch.as_tensor(act, dtype=torch.float32)
        self.rew[i] = float(rew)
        self.next_obs[i] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.done[i] = float(done)
        self.segment[i] = segment
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def gather(self, idx: torch.Tensor) -> Batch:
        return Batch(
            self.obs[idx], self.act[idx], self.rew[idx], self.next_obs[idx], self.done[idx]
        )

    def sample_indices(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty buffer")
        return torch.randint(self.size, (n,), generator=generator, device=self.device)

    def sample(self, n: int, generator: torch.Generator) -> Batch:
        """n transitions drawn uniformly with replacement."""
        return self.gather(self.sample_indices(n, generator))

    def order(self) -> torch.Tensor:
        """Row indices [len] of the stored transitions, oldest first."""
        return (self.ptr - self.size + torch.arange(self.size, device=self.device)) % self.capacity

    def resize(self, capacity: int) -> None:
        """Change capacity keeping the newest transitions (MBPO resizes the model buffer when
        the rollout horizon grows)."""
        if capacity == self.capacity:
            return
        order = self.order()
        keep = order[-capacity:] if self.size > capacity else order
        fields = [getattr(self, name)[keep] for name in _FIELDS]
        self.__init__(capacity, self.obs.shape[1], self.act.shape[1], self.device)
        n = fields[0].shape[0]
        for name, values in zip(_FIELDS, fields, strict=True):
            getattr(self, name)[:n] = values
        self.ptr, self.size = n % capacity, n
