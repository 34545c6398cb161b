"""scripts/op_account.py counts the matmul FLOPs its floor divides by; here they must equal
the count from the layer shapes, which also pins that no hot path does matmuls it need not
(critic weight gradients in SAC's actor step, input gradients of the states, the batch's
actions or the ensemble's inputs)."""

import importlib.util
from pathlib import Path

import pytest
import torch

_SPEC = importlib.util.spec_from_file_location(
    "op_account", Path(__file__).parents[1] / "scripts" / "op_account.py"
)
op_account = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(op_account)


def _forward_flops(members: int, sizes: list[int], rows: int) -> tuple[int, int]:
    """FLOPs of one forward pass of an E-member MLP, and of its first layer alone."""
    per_layer = [2 * members * rows * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return sum(per_layer), per_layer[0]


def _recorded_flops(call) -> int:
    call()  # Adam state exists from the second call on
    return sum(op.flops for op in op_account.record(call, reps=1))


@pytest.mark.parametrize("path", ["sac", "ensemble"])
def test_counted_matmul_flops_match_the_layer_shapes(path):
    obs, act, b = op_account.OBS, op_account.ACT, op_account.B
    if path == "sac":
        actor, a1 = _forward_flops(1, [obs, 256, 256, 2 * act], b)
        critics, c1 = _forward_flops(2, [obs + act, 256, 256, 1], b)
        # Target: actor + target critics. Critic step: forward, weight gradients, input
        # gradients below the first layer. Actor step: actor and critics forward, the
        # critics' input gradients down to the action, the actor's weight gradients and its
        # input gradients below the first layer.
        expected = (actor + critics) + (3 * critics - c1) + (3 * actor - a1 + 2 * critics)
        got = _recorded_flops(op_account.sac_update())
    else:
        full, first = _forward_flops(7, [obs + act, 200, 200, 200, 200, 2 * (obs + 1)], b)
        expected = 3 * full - first  # forward, weight gradients, input gradients but the first
        got = _recorded_flops(op_account.ensemble_step())
    assert got == expected


def test_record_refuses_calls_that_run_different_operators():
    calls = iter(range(10))
    x = torch.ones(3)

    def uneven():  # one operator on even calls, two on odd ones
        y = x + 1
        if next(calls) % 2:
            y = y * 2
        return y

    assert len(op_account.record(lambda: x + 1, reps=3)) == 1
    with pytest.raises(RuntimeError, match="different number of operators"):
        op_account.record(uneven, reps=2)
