"""Where a hot path's time goes, operator by operator, against its matmul FLOP floor
(docs/results.md, "Speed"; issue 18).

    .venv/bin/python scripts/op_account.py [sac|ensemble] [--reps 40]

Every aten operator of one call is timed as it runs inside the call (a dispatch mode
around each kernel), over `reps` calls; each operator's minimum over the calls is kept, so
a shared machine's noise drops out and what remains is what the kernel costs in context.
Printed: the wall time per call (median of 20 chunks, timed without the dispatch mode),
the sum of the operators' minima, the matmuls grouped by shape with their GFLOP/s, the
FLOP floor at the isolated rate of the largest matmul shape, and the rest: the gap between
the wall time and the operators' minima is Python, autograd and dispatch, plus what the
operators take above their minima (their medians under the dispatch mode are no guide:
it slows every operator it wraps).

Hopper sizes, one thread, in a process set up as training jobs are
(`harness.job.process.tune_for_training`).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from algorithms.parts.ensemble import EnsembleConfig, ProbabilisticEnsemble
from algorithms.parts.fit import train_step
from algorithms.sac import SACAgent, SACConfig
from harness.job.process import tune_for_training

OBS, ACT, B = 11, 3, 256  # Hopper
_MATMULS = {torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default}


def matmul_flops(func, args) -> int:
    """2 * E * M * K * N for a (b)addbmm, 0 for any other operator."""
    if func not in _MATMULS:
        return 0
    a, b = [x for x in args if isinstance(x, torch.Tensor)][-2:]  # [E, M, K], [E, K, N]
    return 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


class Op(NamedTuple):
    """One operator of a call: its time (us; `record`: the minimum over the calls) and its
    matmul FLOPs."""

    name: str
    shapes: tuple
    us: float
    flops: int


class _Recorder(TorchDispatchMode):
    """Every kernel of one call, in call order."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Op] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        us = (time.perf_counter() - start) * 1e6
        shapes = tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))
        self.ops.append(Op(str(func), shapes, us, matmul_flops(func, args)))
        return out


def record(call: Callable[[], object], reps: int) -> list[Op]:
    """Each operator of `call` with its minimum time over `reps` calls."""
    runs = []
    for _ in range(reps):
        with _Recorder() as rec:
            call()
        runs.append(rec.ops)
    if len({len(r) for r in runs}) != 1:
        raise RuntimeError("the call ran a different number of operators from call to call")
    return [op._replace(us=min(r[i].us for r in runs)) for i, op in enumerate(runs[0])]


def sac_update() -> Callable[[], object]:
    torch.manual_seed(0)
    agent = SACAgent(OBS, ACT, [-1.0] * ACT, [1.0] * ACT, SACConfig(), torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    batch = (
        torch.randn(B, OBS, generator=g), torch.rand(B, ACT, generator=g) * 2 - 1,
        torch.randn(B, generator=g), torch.randn(B, OBS, generator=g), torch.zeros(B),
    )  # fmt: skip
    return lambda: agent.update(*batch, generator=g)


def ensemble_step() -> Callable[[], object]:
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(OBS, ACT, EnsembleConfig(), torch.device("cpu"))
    g, E = torch.Generator().manual_seed(0), model.cfg.members
    x, y = torch.randn(E, B, OBS + ACT, generator=g), torch.randn(E, B, OBS + 1, generator=g)
    return lambda: train_step(model, x, y)


def peak_gflops(ops) -> float:
    """The isolated rate of the shape that carries the most FLOPs: best of 10 chunks of 50
    calls, warm caches."""
    shape = max((o for o in ops if o.flops), key=lambda o: o.flops).shapes
    a, b = torch.randn(*shape[-2]), torch.randn(*shape[-1])
    best = float("inf")
    for _ in range(11):  # the first chunk warms up
        start = time.perf_counter()
        for _ in range(50):
            torch.bmm(a, b)
        best = min(best, (time.perf_counter() - start) / 50)
    return matmul_flops(torch.ops.aten.bmm.default, (a, b)) / best / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", choices=["sac", "ensemble"])
    p.add_argument("--reps", type=int, default=40)
    args = p.parse_args()
    tune_for_training(1)
    call = sac_update() if args.path == "sac" else ensemble_step()
    for _ in range(50):  # Adam state, allocator
        call()
    chunks = []
    for _ in range(20):
        start = time.perf_counter()
        for _ in range(20):
            call()
        chunks.append((time.perf_counter() - start) / 20 * 1e3)
    wall = statistics.median(chunks)
    ops = record(call, args.reps)
    groups: dict[tuple, list[float]] = collections.defaultdict(lambda: [0.0, 0, 0])
    for op in ops:
        g = groups[(op.name, op.shapes) if op.flops else (op.name,)]
        g[0], g[1], g[2] = g[0] + op.us, g[1] + 1, g[2] + op.flops
    print(
        f"{args.path}: wall {wall:.2f} ms per call; {len(ops)} operators, their minima sum to "
        f"{sum(o.us for o in ops) / 1e3:.2f} ms"
    )
    print(f"{'ms':>7} {'calls':>5} {'GFLOP/s':>8}  operator (input shapes)")
    for key, (us, n, flops) in sorted(groups.items(), key=lambda kv: -kv[1][0])[:20]:
        rate = f"{flops / us / 1e3:8.1f}" if flops else " " * 8
        print(f"{us / 1e3:7.3f} {n:5d} {rate}  {' '.join(map(str, key))}")
    mm_ms = sum(o.us for o in ops if o.flops) / 1e3
    gflop, peak = sum(o.flops for o in ops) / 1e9, peak_gflops(ops)
    floor_ms = gflop / peak * 1e3
    other_ms = sum(o.us for o in ops if not o.flops) / 1e3
    print(
        f"matmuls {mm_ms:.2f} ms for {gflop:.3f} GFLOP; floor {floor_ms:.2f} ms at "
        f"{peak:.0f} GFLOP/s isolated; wall / floor {wall / floor_ms:.2f}x"
    )
    print(
        f"other operators {other_ms:.2f} ms; the rest {wall - mm_ms - other_ms:.2f} ms (Python, "
        "autograd, dispatch, and the operators' time above their minima)"
    )


if __name__ == "__main__":
    main()
