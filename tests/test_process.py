"""The training process's floating-point mode reaches torch's intra-op threads."""

import subprocess
import sys

CHECK = """
import torch
from harness.job.process import subnormals_flushed, tune_for_training
assert not subnormals_flushed()
tune_for_training(2)
x = torch.full((1 << 22,), 1e-40)  # large enough that both threads take a share
print(subnormals_flushed(), int(((x * 1.0) != 0).sum()), torch.get_num_threads())
"""


def test_subnormals_flush_on_every_intra_op_thread():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "0", "2"]
