"""One helper that seeds every generator a run uses (python, numpy, torch) and returns the
explicit generators the algorithms draw from, so runs are reproducible on CPU."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class Generators:
    """Explicit random sources of one run; algorithms take these instead of global RNGs."""

    torch: torch.Generator  # on the run's device: minibatches, policy noise, model sampling
    numpy: np.random.Generator  # host-side sampling
    seed: int
    # Model diagnostics draw from their own streams, so turning them on or off leaves the
    # training run unchanged.
    diag_torch: torch.Generator
    diag_numpy: np.random.Generator

    def state(self) -> dict[str, Any]:
        """Every stream's position, the global ones included (for checkpoints)."""
        return {
            "torch": self.torch.get_state(),
            "numpy": self.numpy.bit_generator.state,
            "diag_torch": self.diag_torch.get_state(),
            "diag_numpy": self.diag_numpy.bit_generator.state,
            "global_python": random.getstate(),
            "global_numpy": np.random.get_state(),
            "global_torch": torch.get_rng_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Put every stream back where `state()` found it, in place (closures holding these
        generators see the restored positions)."""
        self.torch.set_state(state["torch"])
        self.numpy.bit_generator.state = state["numpy"]
        self.diag_torch.set_state(state["diag_torch"])
        self.diag_numpy.bit_generator.state = state["diag_numpy"]
        random.setstate(state["global_python"])
        np.random.set_state(state["global_numpy"])
        torch.set_rng_state(state["global_torch"])


def seed_everything(seed: int, device: torch.device | str = "cpu") -> Generators:
    """Seed python, numpy and torch globally (network init uses the global torch RNG) and
    return per-run generators derived from the same seed."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    device = torch.device(device)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed + 1)  # distinct stream from the global one used for init
    diag = torch.Generator(device=device)
    diag.manual_seed(seed + 2)
    return Generators(
        torch=gen,
        numpy=np.random.default_rng(seed),
        seed=seed,
        diag_torch=diag,
        diag_numpy=np.random.default_rng(seed + 2),
    )
