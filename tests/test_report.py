"""Figures and the HTML report build from stored run directories alone (fixtures, no
training); failed and missing runs, skipped figures and the compute cost show up."""

import json
import re

import pytest
from runfixtures import build

from harness.cli import main

FAILED = ("pmac", "inverted_pendulum", 1)
MISSING = ("mbpo", "inverted_pendulum", 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs, agg, reports = root / "runs", root / "agg", root / "reports"
    jobs = build(runs, "smoke", skip={MISSING}, failed={FAILED})
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
    for name in ("fig2_learning_curves", "fig3d_compounding_error", "rliable_intervals_main"):
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
    assert "CartPole: learning curves: no ok run" in page  # a skipped figure says why
    assert "<td>812</td>" in page and "<td>58.5</td>" in page  # compute cost
    assert "f1x7ure000" in page and "2.13.0+cpu" in page  # provenance


def test_report_needs_the_aggregation(tmp_path, capsys):
    (tmp_path / "runs" / "smoke").mkdir(parents=True)
    code = main(["report", "--profile", "smoke", "--runs", str(tmp_path / "runs"),
                 "--aggregate", str(tmp_path / "agg"), "--out", str(tmp_path / "rep")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "mbrl-bench aggregate" in err
    assert not (tmp_path / "rep").exists()
    code = main(["figures", "--profile", "paper", "--runs", str(tmp_path / "none")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
