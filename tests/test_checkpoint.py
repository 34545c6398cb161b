"""Checkpoint and resume: a run killed with SIGKILL at several points and resumed each time
ends with the same files as an uninterrupted run (wall-clock columns aside)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.job.checkpoint import CHECKPOINT
from tests.conftest import REPO, rows_without_wall_clock

COMMON = ["train", "--seed", "3", "--profile", "smoke", "--threads", "1"]
RUNS = {  # algorithm -> its arguments; checkpoints a few times within the smoke budget
    "pmac": [*COMMON, "--algo", "pmac", "--env", "inverted_pendulum", "--checkpoint-every", "300"],
    "dyna_q_adaptive": [*COMMON, "--algo", "dyna_q_adaptive", "--env", "cartpole",
                        "--checkpoint-every", "1500"],
    "pets": [*COMMON, "--algo", "pets", "--env", "inverted_pendulum", "--checkpoint-every", "300"],
    # the weighting schemes' state: PDML's stored policies (TV weights from step 1,000 on),
    # MaPER's priorities and their maximum
    "pdml": [*COMMON, "--algo", "mbpo", "--env", "inverted_pendulum", "--checkpoint-every", "300",
             "--set", "weighting.scheme=policy_distance",
             "--set", "weighting.policy_distance.start_segments=2"],
    "maper": [*COMMON, "--algo", "mbpo", "--env", "inverted_pendulum", "--checkpoint-every", "300",
              "--set", "weighting.scheme=maper"],
}  # fmt: skip
ARGS = RUNS["pmac"]
FILES = ("eval.csv", "train.csv", "model.csv", "compounding.csv", "coadaptation.csv",
         "visitation.csv")  # fmt: skip


def _start(out: Path, args: list[str]) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("mbrl-bench")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [str(exe), *args, "--out", str(out)], cwd=REPO, env=env,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _kill_after_checkpoint(out: Path, nth: int, delay: float, args: list[str] = ARGS) -> int:
    """Run until the nth checkpoint of this attempt is written, wait `delay` seconds (rows
    after the checkpoint get written), SIGKILL; returns the checkpoint's env step."""
    proc = _start(out, args)
    seen = 0
    for line in proc.stderr:
        if "checkpoint at env step" in line:
            seen += 1
            if seen == nth:
                step = int(line.split("env step ")[1].split()[0])
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return step
    raise AssertionError(f"the run ended before its checkpoint #{nth} (exit {proc.wait()})")


@pytest.mark.parametrize(
    "algo, kills",
    [
        ("pmac", [(1, 0.0), (2, 2.0)]),
        ("dyna_q_adaptive", [(1, 1.0)]),
        ("pets", [(1, 0.5)]),
        ("pdml", [(2, 1.0)]),
        ("maper", [(2, 1.0)]),
    ],
    ids=[
        "pmac-killed-twice",
        "dyna_q_adaptive-killed-once",
        "pets-killed-once",
        "pdml-killed-once",
        "maper-killed-once",
    ],  # fmt: skip
)
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, run_cli, algo, kills):
    args = RUNS[algo]
    ref, out = tmp_path / "ref", tmp_path / "resumed"
    run_cli(*args, "--out", str(ref))
    steps = []
    for nth, delay in kills:
        steps.append(_kill_after_checkpoint(out, nth, delay, args))
        assert (out / CHECKPOINT).exists() and not (out / "done.json").exists()
    assert steps == sorted(set(steps))  # each attempt resumed past the previous checkpoint
    proc = run_cli(*args, "--out", str(out))
    assert f"resumed from the checkpoint at env step {steps[-1]}" in proc.stderr
    assert (out / "done.json").exists() and not (out / CHECKPOINT).exists()
    for name in FILES:
        assert (ref / name).exists() == (out / name).exists(), name
        if (ref / name).exists():
            assert rows_without_wall_clock(out / name) == rows_without_wall_clock(ref / name)
    assert (out / "eval.csv").read_bytes() == (ref / "eval.csv").read_bytes()


def test_resume_with_another_configuration_is_refused(tmp_path, run_cli):
    out = tmp_path / "r"
    _kill_after_checkpoint(out, 1, 0.0)
    before = (out / "config.json").read_bytes()
    proc = run_cli(*ARGS, "--set", "weighting.age.alpha=0.5", "--out", str(out), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"mbrl-bench: error: {out} holds a checkpoint of a different configuration "
        "(hyperparameters differ); delete its checkpoint.pt to start over, or use another --out"
    ]
    assert (out / "config.json").read_bytes() == before
