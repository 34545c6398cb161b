"""Figures and the HTML report build from stored run directories alone (fixtures, no
training); failed and missing runs, skipped figures and the compute cost show up."""

import json
import re
from types import SimpleNamespace

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from runfixtures import build

from harness.analysis.figures.common import plot_band
from harness.analysis.figures.rliable import improvement_label
from harness.analysis.numbers import fmt
from harness.analysis.report import reading
from harness.cli import main

FAILED = ("pmac", "inverted_pendulum", 1)
MISSING = ("mbpo", "inverted_pendulum", 1)
OLD = ("pmac", "inverted_pendulum", 0)  # written before critic.csv existed


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs, agg, reports = root / "runs", root / "agg", root / "reports"
    jobs = build(runs, "smoke", skip={MISSING}, failed={FAILED})
    old = next(j for j in jobs if (j.variant, j.env, j.seed) == OLD).run_dir(runs, "smoke")
    (old / "critic.csv").unlink()
    cartpole = [j for j in jobs if j.env == "cartpole"]
    for j in cartpole:  # the CartPole study left out entirely: its figures must be skipped
        for f in sorted(j.run_dir(runs, "smoke").iterdir()):
            f.unlink()
        j.run_dir(runs, "smoke").rmdir()
    bench = root / "bench" / "smoke" / "pmac" / "inverted_pendulum"
    bench.mkdir(parents=True)
    (bench / "seed0.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        "61.5\t0:01:01\t812.0\t900\t700\t710\t0\t1\t95.0\t58.5\n"
    )
    common = ["--profile", "smoke", "--runs", str(runs)]
    assert main(["aggregate", *common, "--out", str(agg), "--reps", "50"]) == 0
    assert main(["figures", *common, "--aggregate", str(agg), "--out", str(reports)]) == 0
    assert main(["report", *common, "--aggregate", str(agg), "--out", str(reports),
                 "--benchmarks", str(root / "bench")]) == 0  # fmt: skip
    return reports / "smoke", len(cartpole)


def test_figures_png_and_pdf_with_skips_recorded(built):
    out, _ = built
    manifest = json.loads((out / "figures" / "manifest.json").read_text())
    drawn = [n for n, e in manifest.items() if "files" in e]
    for name in (
        "fig2_learning_curves",
        "fig3d_compounding_error",
        "rliable_intervals_main",
        "fig3gh_weighting",
        "weighting_visitation",
        "rliable_improvement_weighting",
    ):
        assert name in drawn
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    assert "no ok run" in manifest["cartpole_learning_curves"]["skipped"]


def test_report_is_self_contained_and_lists_problems(built):
    out, n_cartpole = built
    page = (out / "index.html").read_text()
    assert page.index("<h2>Claims</h2>") < page.index("<h2>Experiment:")  # claims first
    assert "Verdict rule." in page and "inconclusive" in page
    assert not re.search(r"(src|href)=[\"']?(https?:|//|file:)", page)  # nothing external
    assert page.count("data:image/png;base64,") >= 5
    assert page.count("SMOKE: tiny budgets, not results") >= 2  # banner at top and bottom
    n_problems = 2 + n_cartpole  # the failed run, the missing MBPO run, every CartPole run
    section = page.split(f"<h2>Failed, damaged, incomplete and missing runs ({n_problems})</h2>")[1]
    section = section.split("<h2>")[0]
    assert section.count("<td>missing</td>") == 1 + n_cartpole
    assert section.count("<td>failed: non-finite loss</td>") == 1
    assert "CartPole: learning curves and episode lengths (mean ± std): no ok run" in page
    assert "<td>812</td>" in page and "<td>58.5</td>" in page  # compute cost
    assert "f1x7ure000" in page and "2.13.0+cpu" in page  # provenance
    assert "<td>Fixture CPU 9000</td>" in page  # a seed's numbers depend on the CPU model
    assert "<td>AVX512</td>" in page  # ... and on torch's vectorised kernels


def test_report_needs_the_aggregation(tmp_path, capsys):
    (tmp_path / "runs" / "smoke").mkdir(parents=True)
    code = main(["report", "--profile", "smoke", "--runs", str(tmp_path / "runs"),
                 "--aggregate", str(tmp_path / "agg"), "--out", str(tmp_path / "rep")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "mbrl-bench aggregate" in err
    assert not (tmp_path / "rep").exists()
    code = main(["figures", "--profile", "paper", "--runs", str(tmp_path / "none")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_new_figures_from_fixture_runs_and_their_skip_reasons(built):
    out, _ = built
    manifest = json.loads((out / "figures" / "manifest.json").read_text())
    new = ["critic_main", "critic_mechanism", "critic_horizon", "fig1cd_visitation",
           "steps_to_threshold", "rliable_improvement_mechanism", "fig4_mechanism",
           "model_reward_error"]  # fmt: skip
    for name in new:  # drawn from the fixture runs
        assert manifest[name].get("files") == [f"{name}.png", f"{name}.pdf"], name
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    # the run without critic.csv is named, the others drawn
    assert manifest["critic_main"]["notes"] == [
        "pmac on inverted_pendulum, seed(s) 0: no critic.csv, no Q bias drawn"
    ]
    assert "does not keep" in manifest["fig1cd_visitation"]["notes"][0]
    assert "no ok MBPO-family run" in manifest["critic_cartpole"]["skipped"]
    assert "no pair to compare" in manifest["rliable_improvement_horizon"]["skipped"]
    assert "no ok runs or no reference scores" not in json.dumps(manifest)


def test_claims_open_in_plain_words_and_link_their_figures(built):
    out, _ = built
    page = (out / "index.html").read_text()
    claims = page.split("<h2>Claims</h2>")[1].split("<h2>")[0]
    assert (
        claims.index("<ul class=claims>") < claims.index("Verdict rule.") < claims.index("<table>")
    )
    assert "PMAC&#x27;s final return beat MBPO&#x27;s in every seed pair on inverted_pendulum" in (
        claims
    )
    links = re.findall(r'href="#(fig-[^"]+)"', claims)
    assert "fig-rliable_improvement_mechanism" in links and "fig-steps_to_threshold" in links
    for target in links:  # every link lands on a drawn figure
        assert f'id="{target}"' in page, target
    assert "a tie P = 0.5 is not" in page  # the verdict rule states the strict bound
    runs = page.split("<h2>Runs and provenance</h2>")[1]
    assert "<th>final return</th><th>mean length</th>" in runs


def test_degenerate_improvement_is_labelled_all_pairs():
    row = SimpleNamespace(x="pmac", y="mbpo", statistic="final_return", estimate=1.0,
                          ci_low=1.0, ci_high=1.0)  # fmt: skip
    assert improvement_label(row) == "P(pmac > mbpo) = 1, all pairs"
    row.estimate = row.ci_low = row.ci_high = 0.0
    row.statistic = "-local_error"
    assert improvement_label(row) == "P(pmac local error < mbpo) = 0, all pairs"
    row.estimate, row.ci_high = 0.2, 0.5
    assert improvement_label(row) == "P(pmac local error < mbpo)"


def test_numbers_and_the_speedup_reading():
    assert [fmt(122.5), fmt(1500), fmt(0.12345), fmt(float("nan"))] == ["122.5", "1500", "0.123",
                                                                        "n/a"]  # fmt: skip
    empty = pd.DataFrame()
    never = pd.DataFrame([{"experiment": "main", "env": "hopper", "estimate": 0.0,
                           "ci_low": 0.0, "ci_high": 1.5, "last_step": 1000}])  # fmt: skip
    text = reading("main", {"intervals": empty, "improvement": empty, "steps_to_threshold": never})
    assert "times sooner" not in text and "0 [0" not in text
    assert (
        "did not reach MBPO&#x27;s final IQM return within 1000 steps (ratio 0, 95% CI 0-1.5)"
        in (text)
    )


def test_a_damaged_critic_csv_is_one_line_and_exit_2(tmp_path, capsys):
    runs, agg = tmp_path / "runs", tmp_path / "agg"
    jobs = build(runs, "smoke")
    bad = next(j for j in jobs if j.variant == "mbpo").run_dir(runs, "smoke") / "critic.csv"
    bad.write_text("step,q_mean\n500,1.0\n")
    common = ["--profile", "smoke", "--runs", str(runs)]
    assert main(["aggregate", *common, "--out", str(agg), "--reps", "20"]) == 0
    capsys.readouterr()
    code = main(["figures", *common, "--aggregate", str(agg), "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "critic.csv: missing column(s) states, return_mean, q_bias" in err


def test_runs_written_before_the_weighting_schemes_read_as_age_weighting():
    """config.json of a PMAC run before issue 15 had `pmac: {alpha: ...}` (MBPO: null)."""
    from types import SimpleNamespace

    from harness.analysis.figures.paper import _alpha, _own_source

    def run(hp):
        return SimpleNamespace(config={"hyperparameters": hp})

    old_pmac, old_mbpo = (
        run({"pmac": {"alpha": 0.7, "adaptation_interval": 250}}),
        run({"pmac": None}),
    )
    new_pmac = run({"weighting": {"scheme": "age", "age": {"alpha": 0.8}}})
    new_per = run({"weighting": {"scheme": "per", "age": {"alpha": 0.9}}})
    assert [_alpha(r) for r in (old_pmac, old_mbpo, new_pmac, new_per)] == [0.7, None, 0.8, None]
    assert [_own_source(r) for r in (old_pmac, old_mbpo, new_per)] == ["mixture", "uniform", "per"]


@pytest.mark.parametrize("log", [False, True])
def test_band_over_seeds_stays_on_a_log_axis(log):
    """mean +- std on a linear axis; on a log axis, where mean - std of these seeds (0.01,
    0.02, 1.0: std 0.46 > mean 0.34) would fall below zero, the seeds' range instead."""
    df = pd.DataFrame({"step": [1, 1, 1, 2, 2, 2], "seed": [0, 1, 2] * 2,
                       "alpha": [0.01, 0.02, 1.0, 0.2, 0.3, 0.4]})  # fmt: skip
    fig, ax = plt.subplots()
    plot_band(ax, df, "step", "alpha", "mbpo", log=log)
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    plt.close(fig)
    if log:
        assert band.min() == pytest.approx(0.01) and band.max() == pytest.approx(1.0)
        assert (band > 0).all()
    else:
        g = df.groupby("step")["alpha"]
        low = g.mean() - g.std(ddof=0)
        assert band.min() == pytest.approx(low.min()) and low.min() < 0
