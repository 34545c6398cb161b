"""Batched ("ensemble") MLP layers shared by the dynamics ensemble and SAC's twin critics.

One weight tensor of shape [E, in, out] per layer and one `torch.baddbmm` per layer, so E
members (7 dynamics models, or 2 critics) cost one kernel launch instead of E (the
mbrl-lib layout, see STYLE.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

# Weight initialisations: `torch` is nn.Linear's default; the other two are the reference
# implementations' (docs/ambiguities.md #19): `glorot` (uniform, zero bias) is softlearning's
# Keras Dense default and pranz24/Xingyu-Lin's `weights_init_` for SAC's networks;
# `truncated_normal` (std 1 / (2 sqrt(fan_in)), cut at 2 std, zero bias) is jannerm/mbpo's
# and Xingyu-Lin/mbpo_pytorch's for the dynamics ensemble.
Init = Literal["torch", "glorot", "truncated_normal"]
INITS: tuple[str, ...] = get_args(Init)


class EnsembleLinear(nn.Module):
    """E independent affine maps applied in one batched matmul: [E, B, in] -> [E, B, out]."""

    def __init__(
        self, members: int, in_features: int, out_features: int, init: Init = "torch"
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.init = init
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))  # [E, I, O]
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))  # [E, 1, O]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in, fan_out = self.in_features, self.out_features
        if self.init == "torch":
            # kaiming_uniform with a=sqrt(5) reduces to U(-1/sqrt(in), 1/sqrt(in)) for the
            # weights; the bias uses the same fan-in bound.
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.weight, -bound, bound)
            nn.init.uniform_(self.bias, -bound, bound)
            return
        if self.init == "glorot":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            nn.init.uniform_(self.weight, -bound, bound)
        else:
            std = 1.0 / (2.0 * math.sqrt(fan_in))
            nn.init.trunc_normal_(self.weight, std=std, a=-2.0 * std, b=2.0 * std)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"members={self.members}, in={self.in_features}, out={self.out_features}"


def _activation(activation: type[nn.Module]) -> nn.Module:
    """ReLU runs in place: its backward needs only its output and the matmul before it does
    not keep its own, so reusing that buffer saves an allocation and a pass over memory per
    layer (same numbers). SiLU's backward needs its input, so it cannot."""
    return nn.ReLU(inplace=True) if activation is nn.ReLU else activation()


class EnsembleMLP(nn.Module):
    """E MLPs with identical shapes, evaluated together: [E, B, in] -> [E, B, out]."""

    def __init__(
        self,
        members: int,
        in_features: int,
        out_features: int,
        hidden: Sequence[int],
        activation: type[nn.Module] = nn.ReLU,
        init: Init = "torch",
    ) -> None:
        super().__init__()
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [EnsembleLinear(members, a, b, init), _activation(activation)]
        layers.append(EnsembleLinear(members, sizes[-1], out_features, init))
        self.net = nn.Sequential(*layers)
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def linear_layers(self) -> list[EnsembleLinear]:
        return [m for m in self.net if isinstance(m, EnsembleLinear)]
