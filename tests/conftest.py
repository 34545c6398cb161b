import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.job.rundir import WALL_CLOCK_SUFFIX

REPO = Path(__file__).resolve().parents[1]

# Tests measure behaviour, not speed: keep torch on the machine's 2 cores, no oversubscription;
# an explicit OMP_NUM_THREADS (`make bench` sets 1, as the pipeline's jobs run) wins.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the installed `mbrl-bench` console script in a fresh process."""
    exe = Path(sys.executable).with_name("mbrl-bench")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"mbrl-bench {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@pytest.fixture
def run_cli():
    return cli


@pytest.fixture
def one_thread():
    """One torch thread, as the pipeline runs its training jobs (`--threads 1`); for tiny
    tensors torch's thread pool only adds synchronisation on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rows_without_wall_clock(path: Path) -> list[list[str]]:
    """A CSV's cells minus its wall-clock columns: what must match between equal runs."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    keep = [i for i, c in enumerate(rows[0]) if not c.endswith(WALL_CLOCK_SUFFIX)]
    return [[r[i] for i in keep] for r in rows]
