"""Statistics and aggregation: our estimates are rliable's, reruns are byte-identical,
verdicts follow the stated rule, and failed or missing runs are listed, never dropped."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics
from runfixtures import build, length_at

from harness.analysis import claims as cl
from harness.analysis import stats
from harness.analysis.aggregate import aggregate, profile_taus
from harness.analysis.figures.common import Data
from harness.analysis.stats import Estimate, Region
from harness.analysis.tables import Aggregation
from harness.cli import main

REPS = 200


@pytest.fixture
def scores():
    return np.random.default_rng(1).normal(size=(5, 3))


def _rliable(data, func, reps=REPS):
    np.random.seed(stats.SEED)
    point, ci = rly.get_interval_estimates({"k": data}, func, reps=reps)
    return point["k"], ci["k"]


def test_aggregate_intervals_equal_rliables(scores):
    np.random.seed(123)  # whatever ran before must not matter
    ours = stats.aggregates(scores, REPS)
    for name, f in stats.AGGREGATES.items():
        point, ci = _rliable(scores, lambda x, f=f: np.array([f(x)]))
        assert ours[name] == Estimate(float(point[0]), float(ci[0, 0]), float(ci[1, 0]))
    assert ours["iqm"].low < ours["iqm"].value < ours["iqm"].high  # a real interval


def test_improvement_and_iqm_curve_equal_rliables(scores):
    y = scores[:4] - 0.3
    point, ci = _rliable(
        [scores, y], lambda a, b: np.array([metrics.probability_of_improvement(a, b)])
    )
    assert stats.improvement(scores, y, REPS) == Estimate(point[0], ci[0, 0], ci[1, 0])
    curves = np.random.default_rng(2).normal(size=(5, 2, 4))
    per_frame = lambda x: np.array([metrics.aggregate_iqm(x[..., k]) for k in range(x.shape[-1])])  # noqa: E731
    point, ci = _rliable(curves, per_frame)
    ours_point, ours_ci = stats.iqm_curve(curves, REPS)
    np.testing.assert_allclose(ours_point, point, rtol=1e-12)
    np.testing.assert_allclose(ours_ci, ci, rtol=1e-12)


def test_hand_checked_statistics():
    # rliable's own hand-checkable cases: IQM of 1..4 per task pair, P(improvement) 1/3
    assert metrics.aggregate_iqm(np.array([[1.0], [2.0], [3.0], [4.0]])) == 2.5
    x, y = np.array([[1.0], [2.0], [3.0]]), np.array([[2.5]] * 3)
    assert stats.improvement(x, y, 50).value == pytest.approx(1 / 3)
    steps = np.array([1, 2, 3, 4])
    slow = np.array([0.0, 1.0, 2.0, 3.0]).reshape(1, 1, 4)  # reaches its final 3 at step 4
    fast = np.array([1.0, 3.0, 3.0, 3.0]).reshape(1, 1, 4)  # reaches 3 at step 2
    assert stats.speedup(steps, fast, slow) == 2.0
    assert stats.speedup(steps, slow * 0.5, slow) == 0.0  # never reaches: 0


@pytest.mark.parametrize(
    ("x_shift", "expected"),
    [(10.0, stats.SUPPORTED), (-10.0, stats.CONTRADICTED), (0.0, stats.INCONCLUSIVE)],
    ids=["clear win", "clear loss", "overlap"],
)
def test_verdicts_on_synthetic_data(x_shift, expected):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(5, 2))
    x = rng.normal(size=(5, 2)) + x_shift
    est = stats.improvement(x, y, 500)
    assert stats.verdict(est, Region(0.5, 1.0), 5, smoke=False) == expected
    assert stats.verdict(est, Region(0.5, 1.0), 5, smoke=True) == stats.INCONCLUSIVE
    assert stats.verdict(est, Region(0.5, 1.0), 2, smoke=False) == stats.INCONCLUSIVE


def test_verdict_rule_boundaries():
    band = Region(125.0, 175.0)
    assert stats.verdict(Estimate(150, 140, 160), band, 20, False) == stats.SUPPORTED
    assert stats.verdict(Estimate(300, 290, 310), band, 20, False) == stats.CONTRADICTED
    assert stats.verdict(Estimate(170, 160, 180), band, 20, False) == stats.INCONCLUSIVE
    assert stats.verdict(None, band, 20, False) == stats.INCONCLUSIVE
    assert stats.combine([stats.SUPPORTED, stats.SUPPORTED]) == stats.SUPPORTED
    assert stats.combine([stats.SUPPORTED, stats.INCONCLUSIVE]) == stats.INCONCLUSIVE
    assert stats.combine([stats.SUPPORTED, stats.CONTRADICTED]) == stats.CONTRADICTED


S, C, N = stats.SUPPORTED, stats.CONTRADICTED, stats.INCONCLUSIVE
EPS = 1e-9


@pytest.mark.parametrize(
    ("region", "ci", "expected"),
    [
        # better: P(X > Y) > 0.5, the bound 0.5 excluded, 1 included
        (cl.BETTER, (0.5, 0.5), C),  # a tie on every seed is not "better"
        (cl.BETTER, (0.5, 0.9), N),  # the CI touches the excluded bound
        (cl.BETTER, (0.5 + EPS, 0.9), S),
        (cl.BETTER, (1.0, 1.0), S),  # X beats Y on every pair
        (cl.BETTER, (0.3, 0.5), C),  # the CI lies in P <= 0.5
        (cl.BETTER, (0.3, 0.5 + EPS), N),
        # sample efficiency: ratio >= 1.8, the bound included
        (cl.SPEEDUP, (1.8, 2.5), S),
        (cl.SPEEDUP, (1.8 - EPS, 2.5), N),
        (cl.SPEEDUP, (1.0, 1.8), N),  # the CI touches the included bound
        (cl.SPEEDUP, (0.0, 1.8 - EPS), C),
        # Dyna-Q: mean final return >= 195
        (cl.DYNA_Q, (195.0, 200.0), S),
        (cl.DYNA_Q, (190.0, 195.0), N),
        (cl.DYNA_Q, (190.0, 195.0 - EPS), C),
        # model-free plateau: mean final return in [125, 175], both bounds included
        (cl.MODEL_FREE, (125.0, 175.0), S),
        (cl.MODEL_FREE, (124.0, 150.0), N),
        (cl.MODEL_FREE, (175.0, 180.0), N),
        (cl.MODEL_FREE, (175.0 + EPS, 180.0), C),
        (cl.MODEL_FREE, (100.0, 125.0 - EPS), C),
    ],
)
def test_every_region_boundary(region, ci, expected):
    est = Estimate((ci[0] + ci[1]) / 2, *ci)
    assert stats.verdict(est, region, 20, smoke=False) == expected


def test_a_tie_is_not_better_and_regions_print_their_bounds():
    assert stats.verdict(Estimate(0.5, 0.5, 0.5), cl.BETTER, 5, smoke=False) != stats.SUPPORTED
    assert not cl.BETTER.contains(0.5) and cl.BETTER.contains(1.0)
    assert cl.SPEEDUP.contains(1.8) and not cl.SPEEDUP.contains(1.8 - EPS)
    assert [str(r) for r in (cl.BETTER, cl.SPEEDUP, cl.MODEL_FREE)] == [
        "in (0.5, 1]",
        ">= 1.8",
        "in [125, 175]",
    ]
    assert str(Region(high=2.0, high_open=True)) == "< 2"


def test_profile_grid_spans_the_scores_not_0_to_1():
    taus = profile_taus(np.array([0.01, 0.05, 0.1]))
    assert taus[0] < 0.01 and 0.1 < taus[-1] < 0.12 and len(taus) == 41
    assert profile_taus(np.array([0.3, 0.3]))[[0, -1]].tolist() == [0.25, 0.35]


def test_unequal_budgets_are_flagged_and_compared_at_the_common_steps(tmp_path):
    """PMAC runs 4,000 steps, PETS 10,000. At their final evaluations PETS (about 101) ties
    PMAC (100, 101); at step 4,000, the last both evaluated, PETS is at 40% of its return."""
    build(tmp_path / "runs", "smoke", budgets={"pmac": 4_000})
    out = aggregate("smoke", tmp_path / "runs", tmp_path / "agg", reps=50)
    imp = pd.read_csv(out / "improvement.csv").set_index(["experiment", "x", "y", "statistic"])
    pets = imp.loc[("main", "pmac", "pets", "final_return")]
    assert pets.estimate == 1.0  # at step 4,000; the final returns would give 0.5
    assert pets.budget == (
        "inverted_pendulum: steps 4,000 vs 10,000; compared at step 4,000, the last both evaluated"
    )
    claims = pd.read_csv(out / "claims.csv").set_index("claim")
    row = claims.loc["PMAC: better asymptotic performance than PETS"]
    assert row.budget == pets.budget and "compared at step 4,000 (unequal" in row.sentence
    same = claims.loc["Mixture for rollout starts only helps (vs MBPO)"]  # both 10,000 steps
    assert same.budget == "same" and "unequal" not in same.sentence
    runs = pd.read_csv(out / "runs.csv")
    pmac = runs[runs.variant == "pmac"]
    assert (pmac.env_steps == 4_000).all()  # done.json's count: the run's own budget


def test_claim_rows_cite_papers_link_figures_and_read_in_plain_words(tmp_path):
    build(tmp_path / "runs", "smoke")
    out = aggregate("smoke", tmp_path / "runs", tmp_path / "agg", reps=50)
    claims = pd.read_csv(out / "claims.csv")
    assert not claims.source.str.contains("shared/").any()
    assert claims.source.str.contains(r"Sec\.|App\.|Build it").all()
    assert claims.figure.notna().all() and (claims.figure.str.len() > 0).all()
    by_claim = claims.set_index("claim")
    assert by_claim.loc["Mixture for model learning only helps (vs MBPO)"].figure.startswith(
        "rliable_improvement_mechanism"
    )
    dyna = by_claim.loc["Dyna-Q: better final return than model-free Q-learning at 5K transitions"]
    assert dyna.figure.startswith("rliable_improvement_cartpole")
    # the fixture's DQN (300) beats Dyna-Q (200) on every pair: a degenerate 0
    assert (dyna.estimate, dyna.ci_low, dyna.ci_high) == (0.0, 0.0, 0.0)
    assert dyna.sentence == (
        "Dyna-Q's final return beat DQN's in no seed pair on cartpole, 2 seeds: "
        "inconclusive (smoke profile)."
    )
    speed = claims[claims.claim.str.startswith("PMAC: almost 2x")].iloc[0]
    # MBPO reaches its final 60 at 10,000 steps, PMAC (100 at 4,000) at 3,000: 3.33x
    assert speed.sentence == (
        "PMAC reached MBPO's final return 3.33x sooner on inverted_pendulum, 95% CI "
        "3.33-3.33, 2 seeds: inconclusive (smoke profile)."
    )
    imp = pd.read_csv(out / "improvement.csv")
    pairs = set(zip(imp.experiment, imp.x, imp.y, imp.statistic, strict=True))
    assert {
        ("mechanism", "pmac_model_only", "mbpo", "final_return"),
        ("mechanism", "pmac_rollout_only", "mbpo", "final_return"),
        ("cartpole", "dyna_q", "dqn", "final_return"),
        ("main", "pmac", "mbpo", "-local_error"),
    } <= pairs
    curves = pd.read_csv(out / "curves.csv")
    pmac = curves[(curves.variant == "pmac") & (curves.seed == 0)].set_index("step")
    assert pmac.loc[1_000, "length"] == length_at(1_000, 0.4) == 62
    assert (pd.read_csv(out / "runs.csv").final_length.dropna() == 100).all()


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_aggregation_is_byte_identical_and_lists_failed_and_missing(tmp_path):
    jobs = build(tmp_path / "runs", "smoke", skip={("mbpo", "inverted_pendulum", 1)},
                 failed={("pmac", "inverted_pendulum", 1)})  # fmt: skip
    out = aggregate("smoke", tmp_path / "runs", tmp_path / "agg", reps=50)
    first = _files(out)
    np.random.seed(99)  # global state must not leak into the estimates
    aggregate("smoke", tmp_path / "runs", tmp_path / "agg", reps=50)
    assert _files(out) == first
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == len(jobs)
    status = {(r.variant, r.seed): r.status for r in runs.itertuples()}
    assert status[("mbpo", 1)] == "missing"
    assert status[("pmac", 1)] == "failed: non-finite loss"
    problems = pd.read_csv(out / "problems.csv")
    assert {("mbpo", 1), ("pmac", 1)} <= set(zip(problems.variant, problems.seed, strict=True))
    excluded = pd.read_csv(out / "excluded.csv")
    assert ((excluded.variant == "pmac") & (excluded.seed == 1)).any()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status_counts"] == {"failed": 1, "missing": 1, "ok": len(jobs) - 2}
    claims = pd.read_csv(out / "claims.csv")
    assert (claims.verdict == stats.INCONCLUSIVE).all()  # smoke: never conclusive
    # P(pmac > mbpo) uses the ok seeds only: 1 pmac run (seed 0) vs 1 mbpo run (seed 0)
    imp = pd.read_csv(out / "improvement.csv")
    row = imp[(imp.experiment == "main") & (imp.y == "mbpo")].iloc[0]
    assert (row.n_x, row.n_y, row.estimate) == (1, 1, 1.0)


def test_claims_verdicts_from_runs(tmp_path):
    """Quick profile fixture: PMAC clearly beats MBPO (supported), ties PETS (inconclusive),
    has the larger compounding error (contradicted); DQN is far from 150 (contradicted)."""
    build(tmp_path / "runs", "quick")
    out = aggregate("quick", tmp_path / "runs", tmp_path / "agg", reps=200)
    claims = pd.read_csv(out / "claims.csv").set_index("claim")
    verdict = claims["verdict"]
    assert verdict["PMAC: better asymptotic performance than MBPO"] == stats.SUPPORTED
    assert verdict["PMAC: better asymptotic performance than PETS"] == stats.INCONCLUSIVE
    assert verdict["PMAC: lower local one-step model error than MBPO"] == stats.SUPPORTED
    assert verdict["PMAC: lower compounding error than MBPO"] == stats.CONTRADICTED
    assert verdict["Model-free Q-learning plateaus around 150 at 5K transitions"] == (
        stats.CONTRADICTED
    )
    dyna = claims.loc["Dyna-Q reaches a return >= 195 on CartPole at 5K real transitions"]
    assert dyna.verdict == stats.SUPPORTED and dyna.n_seeds == "20"
    assert dyna.estimate == pytest.approx(200 + np.mean(range(20)))
    # PMAC reaches MBPO's final IQM at about 0.4 x its budget: ratio > 1.8 on every env
    speed = claims[claims.index.str.startswith("PMAC: almost 2x")]
    assert len(speed) == 2 and (speed.verdict == stats.SUPPORTED).all()
    # Fig. 3g/h: PMAC (100, fast) above PER 70, RECALL 50, MaPER 65 on both metrics; PDML
    # (99, reaching it only at the end) below PMAC on the area under the curve everywhere
    beats = claims.loc["PMAC: better sample efficiency and final return than PER, RECALL "
                       "and MaPER"]  # fmt: skip
    assert beats.verdict == stats.SUPPORTED and beats.n_seeds == "3 vs 3"
    assert beats.estimate == 1.0 and "(the weakest of 6 comparisons)" in beats.sentence
    distance = claims[claims.index.str.startswith("Age decay vs policy distance")].iloc[0]
    assert distance.verdict == stats.CONTRADICTED
    assert distance.estimate == 0.0 and "weakest comparison: pdml vs pmac, auc" in distance.note
    imp = pd.read_csv(out / "improvement.csv")
    rows = imp[imp.experiment == "weighting"]
    assert {("pmac", "mbpo_maper", "auc"), ("pdml", "pmac", "final_return")} <= set(
        zip(rows.x, rows.y, rows.statistic, strict=True)
    )


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["aggregate", "--profile", "nope", "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown profile 'nope'" in err
    out = tmp_path / "agg"
    assert main(["aggregate", "--profile", "smoke", "--runs", str(tmp_path / "x"),
                 "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert not out.exists()


def test_vectorised_curve_and_profile_equal_rliables_functions():
    rng = np.random.default_rng(3)
    for runs, tasks in [(1, 1), (3, 2), (5, 6), (20, 1), (7, 3)]:
        curves = rng.normal(size=(runs, tasks, 5)) * 1000
        per_step = [metrics.aggregate_iqm(curves[..., k]) for k in range(5)]
        assert stats.iqm_per_step(curves).tolist() == per_step  # bit for bit
        assert stats.iqm(curves[..., 0]) == metrics.aggregate_iqm(curves[..., 0])
    taus = np.linspace(-2, 2, 9)
    point, ci = stats.performance_profile(curves[..., 0], taus, REPS)
    np.random.seed(stats.SEED)
    ref, ref_ci = rly.create_performance_profile({"k": curves[..., 0]}, taus, reps=REPS)
    assert point.tolist() == ref["k"].tolist() and np.array_equal(ci, ref_ci["k"])


def test_area_under_the_curve_by_hand(tmp_path):
    """PMAC seed 0 of the fixture: returns 25, 50, 75, then 100 at steps 1,000-10,000; the
    trapezoid over the 9,000-step span is 787,500 / 9,000 = 87.5 (done.json's `auc` rule),
    up to step 4,000 it is 187,500 / 3,000 = 62.5."""
    build(tmp_path / "runs", "smoke")
    agg = Aggregation("smoke", tmp_path / "runs", reps=10)
    m = agg.matrix("weighting", "pmac", ["inverted_pendulum"], "auc")
    assert m.seeds == [0, 1] and m.values[0, 0] == pytest.approx(87.5)
    early = agg.matrix("weighting", "pmac", ["inverted_pendulum"], "auc",
                       {"inverted_pendulum": 4000})  # fmt: skip
    assert early.values[0, 0] == pytest.approx(62.5)


def test_envs_restrict_the_experiments_to_a_partial_set(tmp_path):
    """A set of runs on Hopper only (the committed reference set): over the profile's
    experiments the Hopper-and-Walker2d claims have no seed complete in both and are not
    computable; restricted with --envs they are judged on Hopper, and experiments with no
    Hopper job (CartPole) drop out, named as such."""
    runs = tmp_path / "runs"
    build(runs, "quick")
    for walker in (runs / "quick").glob("*/walker2d"):
        shutil.rmtree(walker)
    claim = "PMAC: better asymptotic performance than MBPO"
    whole = pd.read_csv(aggregate("quick", runs, tmp_path / "all", reps=200) / "claims.csv")
    assert np.isnan(whole.set_index("claim").loc[claim].estimate)  # no seed ok on both envs
    assert main(["aggregate", "--profile", "quick", "--runs", str(runs), "--envs", "hopper",
                 "--reps", "200", "--out", str(tmp_path / "hop")]) == 0  # fmt: skip
    out = tmp_path / "hop" / "quick"
    claims = pd.read_csv(out / "claims.csv").set_index("claim")
    assert claims.loc[claim].verdict == stats.SUPPORTED and claims.loc[claim].estimate == 1.0
    assert "on hopper" in claims.loc[claim].sentence
    dyna = claims.loc["Dyna-Q reaches a return >= 195 on CartPole at 5K real transitions"]
    assert "experiment 'cartpole' is not run on hopper" in dyna.sentence
    summary = json.loads((out / "summary.json").read_text())
    assert summary["envs"] == ["hopper"] and "cartpole" not in summary["experiment_order"]
    assert {e["envs"] == ["hopper"] for e in summary["experiments"].values()} == {True}
    # the runs on other environments are out of its scope, not extra runs
    assert summary["runs_expected"] == summary["runs_found"] == summary["status_counts"]["ok"]
    assert set(pd.read_csv(out / "runs.csv").env) == {"hopper"}
    assert {env for _, env, _ in Data("quick", runs, tmp_path / "hop").runs} == {"hopper"}
    assert "cartpole" in {env for _, env, _ in Data("quick", runs, tmp_path / "all").runs}
    assert json.loads((tmp_path / "all" / "quick" / "summary.json").read_text())["envs"] is None
    assert main(["report", "--profile", "quick", "--runs", str(runs), "--aggregate",
                 str(tmp_path / "hop"), "--out", str(tmp_path / "rep")]) == 0  # fmt: skip
    page = (tmp_path / "rep" / "quick" / "index.html").read_text()
    assert "(profile quick) | environments: hopper only | budgets: hopper:" in page


def test_unknown_env_in_envs_exits_2_with_one_line(tmp_path, capsys):
    build(tmp_path / "runs", "smoke")
    out = tmp_path / "agg"
    assert main(["aggregate", "--profile", "smoke", "--runs", str(tmp_path / "runs"),
                 "--envs", "inverted_pendulum,walker3", "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--envs inverted_pendulum,walker3: walker3 is not an environment of the smoke" in err
    assert not (out / "smoke" / "summary.json").exists()
