"""Checkpoint and resume: a run killed with SIGKILL at several points and resumed each time
ends with the same files as an uninterrupted run (wall-clock columns aside)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.gate.baseline import machines
from harness.job import provenance
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
    # provenance.json names every process that trained the run, the killed ones first
    prov = json.loads((out / "provenance.json").read_text())
    earlier = prov["resumed_from"]
    assert [p["git_commit"] for p in earlier] == [prov["git_commit"]] * len(kills)
    assert [p["start_time"] for p in earlier] == sorted(p["start_time"] for p in earlier)
    assert earlier[-1]["start_time"] <= prov["start_time"]
    # ... and the checkpoint each resuming process started from (the first one started fresh)
    assert [p["resumed_at_step"] for p in provenance.processes(prov)] == [None, *steps]
    assert "resumed_from" not in json.loads((ref / "provenance.json").read_text())


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


def test_provenance_of_a_run_resumed_under_other_code(tmp_path):
    """A resume keeps the earlier processes' code versions: the report and the baselines
    name every commit that trained the run, and a dirty earlier process marks it dirty."""
    previous = tmp_path / "provenance.json"
    a, b = "a" * 40, "b" * 40
    box = {"cpu": "Xeon", "cpu_capability": "AVX512", "python": "3.11.2", "torch_threads": 1,
           "packages": {"torch": "2.13.0"}}  # fmt: skip
    previous.write_text(json.dumps({"git_commit": a, "git_dirty": True, "start_time": "t0",
                                    "command": ["mbrl-bench", "train"], **box}))  # fmt: skip
    prov = provenance.with_history({"git_commit": b, "git_dirty": False}, previous)
    first = dict.fromkeys(provenance.PROCESS_KEYS) | {"git_commit": a, "git_dirty": True,
                                                       "start_time": "t0", **box}  # fmt: skip
    assert prov["resumed_from"] == [first]
    assert provenance.commits(prov) == [a, b]
    assert provenance.dirty(prov) is True
    assert provenance.distinct(prov, "cpu") == ["Xeon"]  # the resuming record names none
    assert provenance.distinct(prov | {"cpu": "EPYC"}, "cpu") == ["Xeon", "EPYC"]
    assert provenance.joined(prov | {"cpu": "EPYC"}, "cpu") == "Xeon + EPYC"  # a table cell
    assert provenance.joined(prov, "git_commit", width=4) == f"{a[:4]} + {b[:4]}"
    assert provenance.joined(None, "cpu") == ""
    previous.write_text(json.dumps(prov))  # resumed once more, under the same code as before
    again = provenance.with_history({"git_commit": b, "git_dirty": False}, previous)
    assert [p["git_commit"] for p in again["resumed_from"]] == [a, b]
    assert provenance.commits(again) == [a, b]
    previous.write_text("{not json")
    lost = provenance.with_history({"git_commit": b, "git_dirty": False}, previous)
    assert lost["resumed_from"] == [{"provenance": "missing or unreadable at resume"}]
    assert provenance.commits(lost) == [b] and provenance.dirty(lost) is None
    assert provenance.dirty({"git_commit": b, "git_dirty": False}) is False
    # `--auto` sees each process's machine: a lost record is an unknown machine
    assert machines(prov) == [box, None]  # the test's record of the resuming process has none
    assert machines(lost)[0] is None
    # a process recorded before the CPU capability was kept: its machine is unknown too
    previous.write_text(json.dumps({**box, "cpu_capability": None, "git_commit": a}))
    older = provenance.with_history({"git_commit": b, **box}, previous)
    assert machines(older) == [None, box]
