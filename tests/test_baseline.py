"""The regression gate: `baseline save` and `check` on synthetic run directories whose
answer is known (fixtures written below, not training runs), and the statistics behind
the verdicts on hand-checkable inputs."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from runfixtures import write_run_dir

from harness.analysis.stats import iqm
from harness.cli import main
from harness.gate import twosample
from harness.gate.baseline import canonical_csv
from harness.gate.check import compare_statistical
from harness.gate.findings import IMPROVEMENT, PASS, REGRESSION, UNDERPOWERED
from harness.job.experiments import experiment_jobs

MACHINE = {
    "cpu": "Test CPU",
    "cpu_capability": "AVX2",
    "python": "3.11.7",
    "torch_threads": 1,
    "packages": {"torch": "2.13.0+cpu", "numpy": "2.4.6"},
}


# ---------------------------------------------------------------- fixtures: run directories


def write_run(
    root: Path,
    variant: str,
    seed: int,
    final: float,
    *,
    env="inverted_pendulum",
    profile="smoke",
    status="ok",
    wall=1.0,
    machine=None,
    algo="mbpo",
) -> Path:
    """A finished run directory as `mbrl-bench train` writes it, with a 3-point learning
    curve ending at `final` (auc = its mean height), train.csv with a wall-clock column,
    and model.csv."""
    curve = [(500, final / 4), (1000, final / 2), (1500, final)]
    auc = float(np.trapezoid([r for _, r in curve], [s for s, _ in curve]) / 1000)
    config = {"algo": algo, "variant": variant, "env": env, "seed": seed, "profile": profile}
    prov = {"git_commit": "abc", "git_dirty": False, "config_sha256": "c0", **(machine or MACHINE)}
    tables = {
        "eval": ("step,episode,return,length", [(s, i, r, 10) for s, r in curve for i in range(2)]),
        "train": (
            "step,wall_s,loss,model_train_wall_s",
            [(s, wall * s, 0.5, wall) for s, _ in curve],
        ),
        "model": ("step,split,error", [(500, "local", 0.1), (500, "global", 0.2)]),
    }
    done = {
        "status": status,
        "final_return": final if status == "ok" else float("nan"),
        "auc": auc if status == "ok" else float("nan"),
        "env_steps": 1500,
    }
    d = root / profile / variant / env / f"seed{seed}"
    return write_run_dir(d, config, provenance=prov, tables=tables, done=done)


def write_runs(root: Path, variant: str, finals, seed0=0, **kw) -> Path:
    for i, f in enumerate(finals):
        write_run(root, variant, seed0 + i, float(f), **kw)
    return root


def gate(capsys, *argv):
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def save(capsys, runs: Path, out: Path) -> Path:
    code, _, err = gate(capsys, "baseline", "save", "--runs", runs, "--out", out)
    assert code == 0, err
    return out


RNG = np.random.default_rng(7)
BASE = 100 + 10 * RNG.standard_normal(10)  # 10 seeds, mean 100, sd 10
SAME = 100 + 10 * RNG.standard_normal(10)  # new seeds, same distribution
# A 30% drop: at 10 seeds and alpha 0.05/4 the detectable difference is ~1.7 sd = 17.


# ---------------------------------------------------------------- statistics


def test_iqm_and_holm_by_hand():
    assert iqm(np.array([1.0, 2.0, 3.0, 4.0, 100.0, -50.0, 2.5, 3.5])) == 2.75
    assert twosample.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert twosample.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_min_detectable_difference_matches_textbook_power():
    """Two-sided t-test, alpha 0.05, power 0.8: effect size d = 1 needs 17 per group
    (Cohen 1988 Table 2.4.1; G*Power gives power 0.807 at 17, 0.78 at 16)."""
    assert twosample.min_detectable_diff(16, 16, 1.0, 0.05) > 1.0
    assert twosample.min_detectable_diff(17, 17, 1.0, 0.05) < 1.0
    # large samples: the normal approximation (z_0.975 + z_0.8) * sd * sqrt(2 / n)
    n = 100_000
    mdd = twosample.min_detectable_diff(n, n, 2.0, 0.05)
    assert mdd == pytest.approx((1.959964 + 0.841621) * 2.0 * np.sqrt(2 / n), rel=1e-3)
    assert twosample.min_detectable_diff(1, 10, 1.0, 0.05) == np.inf
    assert twosample.min_detectable_diff(5, 5, 0.0, 0.05) == 0.0
    assert np.isfinite(twosample.min_detectable_diff(2, 2, 1.0, 0.0125))  # scipy NaN tail


def test_rank_test_and_bootstrap_on_known_samples():
    a, b = np.arange(5.0), np.arange(5.0) + 10
    assert twosample.rank_test(a, b) == pytest.approx(2 / 252)  # exact: 2 of C(10,5) orders
    assert twosample.rank_test(np.ones(4), np.ones(3)) == 1.0
    rng = np.random.default_rng(0)
    ci = twosample.bootstrap_diff_ci(np.full(4, 5.0), np.full(6, 8.0), 500, 0.95, rng)
    assert ci == pytest.approx((3, 3))
    lo, hi = twosample.bootstrap_diff_ci(BASE, BASE - 30, 2000, 0.95, rng)
    assert lo < -30 < hi < 0  # covers the true shift, excludes no change


def _records(finals, status="ok"):
    return [{"status": status, "final_return": f, "auc": f / 2} for f in finals]


@pytest.mark.parametrize(
    "cand, tolerance, verdict",
    [
        (BASE - 30, 0.25, REGRESSION),
        (BASE + 30, 0.25, IMPROVEMENT),
        (SAME, 0.25, PASS),
        (SAME[:3], 0.25, PASS),  # 3 seeds detect 14.4 (sd 10, alpha 0.05/4) < 25
        (SAME[:3], 0.10, UNDERPOWERED),  # ... but not a 10% drop
        (SAME[:1], 0.25, UNDERPOWERED),  # one seed: nothing to test
    ],
    ids=["drop30", "gain30", "new-seeds", "3-seeds", "3-seeds-10%", "1-seed"],
)
def test_verdicts_on_synthetic_scores(cand, tolerance, verdict):
    base = {("v", "e"): _records(BASE)}
    (f,) = compare_statistical(base, {("v", "e"): _records(cand)}, 0.05, tolerance, 2000)
    assert f.verdict == verdict, f.summary
    assert [t.metric for t in f.tests] == ["final_return", "auc"]


def test_more_failed_runs_is_a_regression_even_when_scores_match():
    base = {("v", "e"): _records(BASE)}
    cand = {("v", "e"): _records(BASE[:8]) + _records([0, 0], status="failed: non-finite")}
    (f,) = compare_statistical(base, cand, 0.05, 0.25, 500)
    assert f.verdict == REGRESSION and f.summary.startswith("20% of candidate runs failed")


def test_false_alarm_rate_under_the_null_is_at_most_alpha():
    """200 checks of two unchanged (variant, env) pairs, 10 new seeds each, normal scores:
    Holm over the 4 tests keeps the chance of any regression verdict <= alpha = 0.05
    (binomial sd at 200 checks is 0.015, so the bound 0.05 + 0.03 fails a broken gate)."""
    rng = np.random.default_rng(1)
    alarms = 0
    for _ in range(200):
        base = {p: _records(100 + 10 * rng.standard_normal(10)) for p in [("a", "e"), ("b", "e")]}
        cand = {p: _records(100 + 10 * rng.standard_normal(10)) for p in base}
        alarms += any(
            f.verdict == REGRESSION for f in compare_statistical(base, cand, 0.05, 0.25, 200)
        )
    assert alarms / 200 <= 0.08


# ---------------------------------------------------------------- baseline save


def test_save_stores_summaries_curves_hashes_and_provenance(tmp_path, capsys):
    runs = write_runs(tmp_path / "runs", "mbpo", [50, 60])
    write_run(runs, "pmac", 0, 40.0, algo="pmac")
    out = save(capsys, runs / "smoke", tmp_path / "bl" / "{profile}")
    out = tmp_path / "bl" / "smoke"
    meta = json.loads((out / "provenance.json").read_text())
    assert meta["kind"] == "mbrl-bench baseline" and meta["profile"] == "smoke"
    assert meta["runs"] == 3 and meta["machines"] == [MACHINE]
    data = json.loads((out / "mbpo" / "inverted_pendulum.json").read_text())
    r0 = data["runs"][0]
    assert [r["seed"] for r in data["runs"]] == [0, 1]
    assert r0["final_return"] == 50.0 and r0["curve"] == {
        "step": [500, 1000, 1500],
        "return": [12.5, 25.0, 50.0],
    }
    assert r0["model_error"]["local"] == {"step": [500], "error": [0.1]}
    assert sorted(r0["sha256"]) == ["eval.csv", "model.csv", "train.csv"]
    assert (out / "pmac" / "inverted_pendulum.json").exists()


def test_baseline_keeps_the_state_model_error(tmp_path, capsys):
    """model.csv's reward rows (column `target`) stay out of the baseline's model error."""
    runs = write_runs(tmp_path / "runs", "mbpo", [50])
    d = runs / "smoke" / "mbpo" / "inverted_pendulum" / "seed0"
    (d / "model.csv").write_text(
        "step,split,target,error\n500,local,state,0.1\n500,local,reward,7.0\n"
        "500,global,state,0.2\n500,global,reward,8.0\n"
    )
    save(capsys, runs / "smoke", tmp_path / "bl" / "{profile}")
    data = json.loads((tmp_path / "bl" / "smoke" / "mbpo" / "inverted_pendulum.json").read_text())
    assert data["runs"][0]["model_error"] == {
        "global": {"step": [500], "error": [0.2]},
        "local": {"step": [500], "error": [0.1]},
    }


def test_hashes_ignore_wall_clock_columns_only(tmp_path):
    a = write_run(tmp_path / "a", "v", 0, 10.0, wall=1.0)
    b = write_run(tmp_path / "b", "v", 0, 10.0, wall=2.5)
    assert (a / "train.csv").read_bytes() != (b / "train.csv").read_bytes()
    assert canonical_csv(a / "train.csv") == canonical_csv(b / "train.csv")
    assert canonical_csv(a / "train.csv").decode().splitlines()[0] == "step,loss"
    assert canonical_csv(a / "eval.csv") == (a / "eval.csv").read_bytes()


def test_save_replaces_the_whole_baseline(tmp_path, capsys):
    out = tmp_path / "bl"
    save(capsys, write_runs(tmp_path / "r1", "old", [1, 2]) / "smoke", out)
    save(capsys, write_runs(tmp_path / "r2", "new", [3, 4]) / "smoke", out)
    assert sorted(p.name for p in out.iterdir()) == ["new", "provenance.json"]
    assert not list(tmp_path.glob(".bl.*"))  # no temporary directory left behind


# ---------------------------------------------------------------- check: CLI, reports


@pytest.fixture
def baseline(tmp_path, capsys):
    runs = write_runs(tmp_path / "base", "mbpo", BASE)
    write_runs(runs, "pmac", BASE + 5, algo="pmac")
    return save(capsys, runs / "smoke", tmp_path / "baseline")


def test_check_flags_a_drop_writes_markdown_and_junit(tmp_path, capsys, baseline):
    cand = write_runs(tmp_path / "cand", "mbpo", BASE - 30, seed0=100)
    write_runs(cand, "pmac", SAME + 5, seed0=100, algo="pmac")
    md, xml = tmp_path / "out" / "check.md", tmp_path / "out" / "check.xml"
    code, out, _ = gate(
        capsys,
        "check",
        "--baseline",
        baseline,
        "--candidate",
        cand,
        "--markdown",
        md,
        "--junit",
        xml,
    )
    assert code == 1
    assert md.read_text() == out
    assert "| mbpo | inverted_pendulum | **regression** |" in out
    assert "| pmac | inverted_pendulum | **pass** |" in out
    assert "**Overall: REGRESSION**" in out
    suite = ET.parse(xml).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "0")
    cases = {c.get("classname"): c for c in suite.iter("testcase")}
    assert cases["mbpo"].find("failure") is not None and cases["pmac"].find("failure") is None


def test_unchanged_rerun_with_new_seeds_passes(tmp_path, capsys, baseline):
    cand = write_runs(tmp_path / "cand", "mbpo", SAME, seed0=100)
    code, out, _ = gate(capsys, "check", "--baseline", baseline, "--candidate", cand)
    assert code == 0 and "| mbpo | inverted_pendulum | **pass** |" in out
    assert "pmac/inverted_pendulum: in the baseline, not in the candidate" in out


def test_underpowered_is_a_skipped_test_not_a_failure(tmp_path, capsys, baseline):
    cand = write_runs(tmp_path / "cand", "mbpo", SAME[:2], seed0=100)
    xml = tmp_path / "c.xml"
    code, out, _ = gate(
        capsys,
        "check",
        "--baseline",
        baseline,
        "--candidate",
        cand,
        "--junit",
        xml,
        "--tolerance",
        "0.1",
    )
    assert code == 0 and "**underpowered**" in out
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite.get("skipped") == "1" and suite.find("testcase/skipped") is not None


def test_rename_compares_a_broken_variant_with_its_baseline(tmp_path, capsys, baseline):
    cand = write_runs(tmp_path / "cand", "mbpo_broken", BASE - 30, seed0=100)
    code, _, _ = gate(capsys, "check", "--baseline", baseline, "--candidate", cand)
    assert code == 2  # nothing in common without the mapping
    code, out, _ = gate(
        capsys, "check", "--baseline", baseline, "--candidate", cand, "--rename", "mbpo_broken=mbpo"
    )
    assert code == 1 and "compared as: mbpo_broken as mbpo" in out


# ---------------------------------------------------------------- exact mode


def _copy_runs(tmp_path, capsys):
    runs = write_runs(tmp_path / "base", "mbpo", [10, 20, 30])
    bl = save(capsys, runs / "smoke", tmp_path / "bl")
    cand = write_runs(tmp_path / "cand", "mbpo", [10, 20, 30], wall=9.0)  # other wall clock
    return bl, cand


def test_exact_passes_on_identical_files(tmp_path, capsys):
    bl, cand = _copy_runs(tmp_path, capsys)
    code, out, _ = gate(capsys, "check", "--exact", "--baseline", bl, "--candidate", cand)
    assert code == 0 and out.count("3 files byte-identical") == 3


def test_exact_fails_on_a_one_byte_change(tmp_path, capsys):
    bl, cand = _copy_runs(tmp_path, capsys)
    ev = cand / "smoke/mbpo/inverted_pendulum/seed1/eval.csv"
    ev.write_bytes(ev.read_bytes().replace(b"20.0,10", b"20.1,10", 1))
    xml = tmp_path / "x.xml"
    code, out, _ = gate(
        capsys, "check", "--exact", "--baseline", bl, "--candidate", cand, "--junit", xml
    )
    assert code == 1
    (line,) = [x for x in out.splitlines() if x.startswith("| mbpo | inverted_pendulum | 1 |")]
    assert "**regression**" in line and "eval.csv differs" in line
    # the last evaluation no longer matches done.json's final return: damaged
    assert "damaged: eval.csv's last mean return 20.05 != done.json's final_return" in line
    assert ET.parse(xml).getroot().find("testsuite").get("failures") == "1"


def test_exact_fails_on_a_missing_or_extra_file(tmp_path, capsys):
    bl, cand = _copy_runs(tmp_path, capsys)
    (cand / "smoke/mbpo/inverted_pendulum/seed0/model.csv").unlink()
    (cand / "smoke/mbpo/inverted_pendulum/seed2/extra.csv").write_text("a\n1\n")
    code, out, _ = gate(capsys, "check", "--exact", "--baseline", bl, "--candidate", cand)
    assert code == 1 and "model.csv missing" in out and "extra.csv not in the baseline" in out


def test_auto_picks_exact_on_the_same_machine_else_statistical(tmp_path, capsys):
    bl, cand = _copy_runs(tmp_path, capsys)
    code, out, _ = gate(capsys, "check", "--auto", "--baseline", bl, "--candidate", cand)
    assert code == 0 and "mode: **exact**: same CPU model (Test CPU, AVX2 kernels)" in out
    other = {**MACHINE, "packages": {"torch": "2.12.0+cpu", "numpy": "2.4.6"}}
    cand2 = write_runs(tmp_path / "cand2", "mbpo", [10, 20, 30], machine=other)
    code, out, _ = gate(capsys, "check", "--auto", "--baseline", bl, "--candidate", cand2)
    assert code == 0 and "mode: **statistical**" in out
    assert "torch 2.13.0+cpu vs 2.12.0+cpu" in out
    # the same CPU model under other vectorised kernels rounds differently: not exact
    avx512 = write_runs(tmp_path / "avx512", "mbpo", [10, 20, 30],
                        machine={**MACHINE, "cpu_capability": "AVX512"})  # fmt: skip
    code, out, _ = gate(capsys, "check", "--auto", "--baseline", bl, "--candidate", avx512)
    assert code == 0 and "mode: **statistical**" in out
    assert "cpu_capability: 'AVX2' vs 'AVX512'" in out


def test_auto_is_statistical_against_a_baseline_without_the_cpu_capability(tmp_path, capsys):
    """A baseline saved before provenance recorded the capability (the committed smoke one)."""
    bl, cand = _copy_runs(tmp_path, capsys)
    meta = json.loads((bl / "provenance.json").read_text())
    meta["machines"] = [{k: v for k, v in m.items() if k != "cpu_capability"}
                        for m in meta["machines"]]  # fmt: skip
    (bl / "provenance.json").write_text(json.dumps(meta))
    code, out, _ = gate(capsys, "check", "--auto", "--baseline", bl, "--candidate", cand)
    assert code == 0 and "mode: **statistical**" in out
    assert "none recorded in full (cpu, cpu_capability, python" in out


# ---------------------------------------------------------------- bad input


def _bad_inputs(tmp_path, bl, cand):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "provenance.json").write_text("{oops")
    other = write_runs(tmp_path / "other", "sac", [1, 2])
    return [
        (["--alpha", "1.5"], "--alpha must be in (0, 1)"),
        (["--alpha", "0"], "--alpha must be in (0, 1)"),
        (["--tolerance", "-1"], "--tolerance must be >= 0"),
        (["--baseline", tmp_path / "nope"], "has no provenance.json"),
        (["--baseline", corrupt], "cannot read"),
        (["--candidate", tmp_path / "nope"], "does not exist"),
        (["--candidate", other], "no (variant, env) of the candidate (sac/inverted_pendulum)"),
        (["--rename", "mbpo"], "malformed --rename 'mbpo'"),
        (["--exact", "--auto"], "not allowed with argument"),
    ]


def test_check_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys):
    bl, cand = _copy_runs(tmp_path, capsys)
    for change, message in _bad_inputs(tmp_path, bl, cand):
        args = {"--baseline": bl, "--candidate": cand}
        extra = []
        for i in range(0, len(change), 2):
            if change[i] in args:
                args[change[i]] = change[i + 1]
            else:
                extra += [x for x in change[i : i + 2] if x is not None]
        md = tmp_path / "reports" / "r.md"
        argv = ["check", *[x for kv in args.items() for x in kv], *extra, "--markdown", md]
        code, out, err = gate(capsys, *argv)
        assert code == 2, (change, out, err)
        assert len(err.strip().splitlines()) == 1 and message in err, (change, err)
        assert not (tmp_path / "reports").exists()


def test_save_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys):
    runs = write_runs(tmp_path / "runs", "mbpo", [1, 2])
    (runs / "smoke/mbpo/inverted_pendulum/seed1/done.json").unlink()
    write_run(tmp_path / "mixed", "mbpo", 0, 1.0)
    write_run(tmp_path / "mixed", "mbpo", 0, 1.0, profile="quick")
    notbase = tmp_path / "notbase"
    notbase.mkdir()
    (notbase / "keep.txt").write_text("mine")
    cases = [
        (runs, tmp_path / "bl", "incomplete (no done.json)"),
        (tmp_path / "mixed", tmp_path / "bl", "mix profiles ['quick', 'smoke']"),
        (tmp_path / "nope", tmp_path / "bl", "does not exist"),
        (tmp_path / "runs/smoke/mbpo/inverted_pendulum/seed0", notbase, "not a baseline"),
    ]
    for src, out, message in cases:
        code, _, err = gate(capsys, "baseline", "save", "--runs", src, "--out", out)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
        assert not (tmp_path / "bl").exists()
    assert [p.name for p in notbase.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------- the Snakemake rules


def test_regress_rules_train_the_regress_experiment_then_check(tmp_path):
    """Dry run of the workflow's `regress_check` (workflow/rules/regress.smk) in a scratch
    working directory: one candidate job per (variant, env, seed) of the profile's
    `regress` experiment, each a `mbrl-bench train` into results/candidate/, then one
    `mbrl-bench check` against results/baselines/regress/smoke/."""
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "results/baselines/regress/smoke").mkdir(parents=True)
    (tmp_path / "results/baselines/regress/smoke/provenance.json").write_text("{}")
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run(
        [str(exe), "-s", str(repo / "Snakefile"), "-d", str(tmp_path), "regress_check",
         "-n", "-p", "--cores", "1", "--configfile", str(repo / "config/smoke.yaml")],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jobs = experiment_jobs("smoke", gate=True)["regress"]
    assert len(jobs) >= 10
    train = [ln for ln in proc.stdout.splitlines() if "mbrl-bench train" in ln]
    assert len(train) == len(jobs)
    j = jobs[-1]
    assert (
        f"mbrl-bench train --algo {j.algo} --env {j.env} --seed {j.seed} --profile smoke "
        "--profile-json"
    ) in proc.stdout
    assert f"--checkpoint-every 500 --variant {j.variant}" in proc.stdout
    assert f"--out results/candidate/smoke/{j.variant}/{j.env}/seed{j.seed}" in proc.stdout
    assert (
        "mbrl-bench check --baseline results/baselines/regress/smoke"
        " --candidate results/candidate/smoke"
        " --markdown reports/regress/smoke/check.md --junit reports/regress/smoke/check.xml"
    ) in proc.stdout
