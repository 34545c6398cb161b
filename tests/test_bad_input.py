"""Bad input to every subcommand: one line on stderr, exit code 2, nothing the harness did
not write deleted or overwritten. One table per subcommand: its bad paths and its damaged
inputs (damaged run files themselves: tests/test_runs.py)."""

import fcntl
import json
import os
from pathlib import Path

import pytest
from runfixtures import build

from harness.cli import main
from harness.job.checkpoint import CHECKPOINT
from harness.job.train import TrainRequest, resolve_run, run_config

TRAIN = ["train", "--algo", "sac", "--env", "inverted_pendulum", "--seed", "0",
         "--profile", "smoke"]  # fmt: skip


def run_main(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    return code, capsys.readouterr().err


def one_line_exit_2(argv, capsys, message):
    code, err = run_main(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]
    return lines[0]


def own_config(out: Path) -> dict:
    """config.json exactly as `train` with TRAIN's arguments writes it."""
    req = TrainRequest(algo="sac", env="inverted_pendulum", seed=0, out=out, profile="smoke")
    algo, spec, profile, cfg = resolve_run("sac", "inverted_pendulum", "smoke", {})
    import torch

    return json.loads(json.dumps(run_config(req, algo, spec, profile, cfg, torch.device("cpu"))))


def _file(tmp):
    (tmp / "f").write_text("user's")
    return tmp / "f"


def _foreign(tmp):
    (tmp / "d").mkdir()
    (tmp / "d" / "notes.csv").write_text("user's")
    return tmp / "d"


def _other_finished(tmp):
    d = tmp / "d"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({**own_config(d), "seed": 7}))
    (d / "done.json").write_text('{"status": "ok"}')
    return d


def _other_unfinished(tmp):
    d = tmp / "d"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({**own_config(d), "seed": 7}))
    (d / "eval.csv").write_text("step,episode,return,length\n")
    return d


def _no_config(tmp):
    d = tmp / "d"
    d.mkdir()
    (d / "eval.csv").write_text("step,episode,return,length\n")
    return d


def _bad_checkpoint(tmp):
    d = tmp / "d"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(own_config(d)))
    (d / "provenance.json").write_text('{"mine": 1}')
    (d / CHECKPOINT).write_bytes(b"not a checkpoint")
    return d


TRAIN_CASES = [
    (_file, [], "exists and is not a directory"),
    (lambda tmp: Path("/proc/no/such/run"), [], "cannot be created"),
    (_foreign, [], "holds files mbrl-bench train did not write (notes.csv)"),
    (_other_finished, [], "is a finished run of a different configuration (seed differ)"),
    (_other_unfinished, [], "is a run of a different configuration (seed differ)"),
    (_no_config, [], "holds run files but no readable config.json"),
    (_bad_checkpoint, [], "cannot read checkpoint"),
    (lambda tmp: tmp / "r", ["--env", "LunarLanderContinuous-v3"],
     "cannot make environment 'LunarLanderContinuous-v3': DependencyNotInstalled"),
    (lambda tmp: tmp / "r", ["--env", "nomodule_xyz:Tiny-v0"],
     "'nomodule_xyz:Tiny-v0': cannot import module 'nomodule_xyz'"),
    (lambda tmp: tmp / "r", ["--env", "json:Tiny-v0"],
     "'json:Tiny-v0': module json registers no environment 'Tiny-v0'"),
    (lambda tmp: tmp / "r", ["--profile-json", "{"], "--profile-json is not valid JSON"),
    (lambda tmp: tmp / "r", ["--profile-json", '{"profile": "smoke", "label": "x", "train": '
                             '{"sac": {"sac.lrr": 1}}}'], "unknown key 'sac.lrr'"),
    (lambda tmp: tmp / "r", ["--profile-json", '{"profile": "smoke", "label": "x", "train": '
                             '{"sacc": {}}}'], "train: 'sacc' does not match"),
    (lambda tmp: tmp / "r", ["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0"),
    (lambda tmp: tmp / "r", ["--set", "pmac.alpha=0.8"],
     "key 'pmac.alpha' is now 'weighting.age.alpha' (--set)"),
]  # fmt: skip


@pytest.mark.parametrize("make_out, extra, message", TRAIN_CASES,
                         ids=[m[:40] for _, _, m in TRAIN_CASES])  # fmt: skip
def test_train(tmp_path, capsys, make_out, extra, message):
    out = make_out(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    argv = [*TRAIN, *extra, "--out", out]
    if "--env" in extra:  # the case's environment replaces TRAIN's
        i = argv.index("--env")
        del argv[i : i + 2]
    one_line_exit_2(argv, capsys, message)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing written, deleted or overwritten (provenance.json too)


def test_train_second_process_on_one_out_stops_at_once(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a running `train` holds
    try:
        one_line_exit_2([*TRAIN, "--out", out], capsys, "is in use by another mbrl-bench train")
    finally:
        os.close(fd)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_train_accepts_yaml_1_1_exponents(tmp_path, capsys):
    from harness.job.config import parse_set

    algo, spec, profile, cfg = resolve_run("sac", "inverted_pendulum", "smoke",
                                           parse_set(["sac.lr=3e-4", "sac.tau=5E-3"]))  # fmt: skip
    assert cfg.sac.lr == 3e-4 and cfg.sac.tau == 5e-3


@pytest.fixture
def runs(tmp_path):
    build(tmp_path / "runs", "smoke")
    return tmp_path / "runs"


def _summary(tmp):
    (tmp / "agg" / "smoke").mkdir(parents=True)
    (tmp / "agg" / "smoke" / "summary.json").write_text('{"trunc')
    return tmp / "agg"


REPORT_CASES = [  # (command, extra arguments (tmp -> list), message)
    ("aggregate", lambda tmp: ["--out", _file(tmp)], "exists and is not a directory"),
    ("aggregate", lambda tmp: ["--out", "/proc/no/such"], "--out: cannot create"),
    ("aggregate", lambda tmp: ["--reps", "0"], "--reps must be >= 1"),
    ("aggregate", lambda tmp: ["--runs", tmp / "nope"], "does not exist or is not a directory"),
    ("aggregate", lambda tmp: ["--profile", "huge"], "unknown profile 'huge'"),
    ("figures", lambda tmp: ["--out", _file(tmp)], "exists and is not a directory"),
    ("figures", lambda tmp: ["--aggregate", _summary(tmp), "--out", tmp / "rep"],
     "summary.json: Unterminated string"),
    ("figures", lambda tmp: ["--aggregate", tmp / "none"], "summary.json missing"),
    ("report", lambda tmp: ["--out", _file(tmp)], "exists and is not a directory"),
    ("report", lambda tmp: ["--aggregate", _summary(tmp), "--out", tmp / "rep"],
     "summary.json: Unterminated string"),
]  # fmt: skip


@pytest.mark.parametrize("command, extra, message", REPORT_CASES,
                         ids=[f"{c}-{m[:30]}" for c, _, m in REPORT_CASES])  # fmt: skip
def test_aggregate_figures_report(tmp_path, capsys, runs, command, extra, message):
    args = {"--profile": "smoke", "--runs": runs}
    rest = extra(tmp_path)
    for i in range(0, len(rest), 2):
        args[rest[i]] = rest[i + 1]
    one_line_exit_2([command, *[x for kv in args.items() for x in kv]], capsys, message)
    assert not (tmp_path / "rep").exists()


def test_baseline_save_refuses_damaged_runs(tmp_path, capsys, runs):
    run = sorted((runs / "smoke").rglob("seed0"))[0]
    (run / "config.json").unlink()
    one_line_exit_2(["baseline", "save", "--runs", runs / "smoke", "--out", tmp_path / "b"],
                    capsys, "are damaged, e.g. ")  # fmt: skip
    assert not (tmp_path / "b").exists()


def test_baseline_save_bad_out(tmp_path, capsys, runs):
    one_line_exit_2(["baseline", "save", "--runs", runs / "smoke", "--out", _file(tmp_path)],
                    capsys, "exists and is not a directory")  # fmt: skip


CHECK_CASES = [
    (lambda tmp, runs: ["--baseline", tmp / "nope", "--candidate", runs / "smoke"],
     "has no provenance.json"),
    (lambda tmp, runs: ["--baseline", tmp / "nope", "--candidate", runs / "smoke",
                        "--alpha", "1.5"], "--alpha must be in (0, 1)"),
    (lambda tmp, runs: ["--baseline", tmp / "nope", "--candidate", runs / "smoke",
                        "--rename", "pmac"], "malformed --rename 'pmac'"),
]  # fmt: skip


@pytest.mark.parametrize("extra, message", CHECK_CASES, ids=[m for _, m in CHECK_CASES])
def test_check(tmp_path, capsys, runs, extra, message):
    one_line_exit_2(["check", *extra(tmp_path, runs)], capsys, message)


def test_check_reports_damaged_runs_in_statistical_mode(tmp_path, capsys, runs):
    assert run_main(["baseline", "save", "--runs", runs / "smoke", "--out", tmp_path / "b"],
                    capsys)[0] == 0  # fmt: skip
    run = sorted((runs / "smoke" / "pmac").rglob("seed0"))[0]
    (run / "eval.csv").write_text((run / "eval.csv").read_text()[:-7])
    code, err = run_main(["check", "--baseline", tmp_path / "b", "--candidate", runs / "smoke",
                          "--markdown", tmp_path / "c.md"], capsys)  # fmt: skip
    text = (tmp_path / "c.md").read_text()
    assert "seed 0: damaged: eval.csv: truncated" in text, text


def test_aggregate_lists_damaged_runs_and_ignores_copies(tmp_path, capsys, runs):
    """Damaged runs are `damaged: <reason>` in runs.csv and problems.csv (exit 0, no
    traceback); a copy seed0.bak is not read as a run."""
    import shutil

    import pandas as pd

    evals = sorted((runs / "smoke").rglob("eval.csv"))
    evals[0].write_text(evals[0].read_text()[:-7])  # truncated mid-line
    text = evals[1].read_text().splitlines()
    evals[1].write_text("\n".join([*text[:-1], text[-1].replace(text[-1].split(",")[2], "abc")])
                        + "\n")  # fmt: skip
    shutil.copytree(evals[2].parent, evals[2].parent.with_name("seed0.bak"))
    code, err = run_main(["aggregate", "--profile", "smoke", "--runs", runs, "--out",
                          tmp_path / "agg", "--reps", "100"], capsys)  # fmt: skip
    assert code == 0, err
    table = pd.read_csv(tmp_path / "agg/smoke/runs.csv")
    damaged = table[table["status"].str.startswith("damaged")]["status"].tolist()
    assert len(damaged) == 2 and "damaged: eval.csv: truncated (no final newline)" in damaged
    assert any("is not a number" in s for s in damaged)
    problems = pd.read_csv(tmp_path / "agg/smoke/problems.csv")
    assert problems["status"].str.startswith("damaged").sum() == 2
    assert len(table) == len(table.drop_duplicates(["variant", "env", "seed"]))
