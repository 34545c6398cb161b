"""Our curves beside the published ones (harness.analysis.published): matched steps, linear
interpolation of the published curve, mean episode lengths, and damaged published files."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.analysis.published import published_curves, published_table
from harness.analysis.report import published_section
from harness.errors import ConfigError


def _iqm(variant, steps, iqm, n=3, experiments=("main",)):
    return pd.DataFrame(
        [
            {"experiment": e, "variant": variant, "env": "hopper", "scale": "return",
             "step": s, "iqm": v, "ci_low": v - 10, "ci_high": v + 10, "n_seeds": n}
            for e in experiments
            for s, v in zip(steps, iqm, strict=True)
        ]
    )  # fmt: skip


def _curves(variant, rows):
    return pd.DataFrame(
        [
            {"variant": variant, "env": "hopper", "seed": seed, "status": status, "step": step,
             "return": 0.0, "length": length, "normalised": 0.0}
            for seed, status, step, length in rows
        ],
        columns=["variant", "env", "seed", "status", "step", "return", "length", "normalised"],
    )  # fmt: skip


@pytest.fixture
def published(tmp_path):
    (tmp_path / "mbpo_hopper.csv").write_text(
        "step,return_mean,return_std\n6019,100,10\n7019,300,30\n8019,500,50\n"
    )
    return tmp_path


def test_matched_steps_interpolate_the_published_curve(published):
    iqm = _iqm("mbpo", [5000, 6000, 7000, 8000, 9000], [1, 2, 3, 4, 5], experiments=("a", "b"))
    curves = _curves(
        "mbpo",
        [(0, "ok", 7000, 100), (1, "ok", 7000, 300), (2, "failed: x", 7000, 1000)],
    )
    table = published_table(iqm, curves, published)
    # 5,000, 6,000 and 9,000 lie outside [6019, 8019]; one row per step despite two experiments.
    assert table["step"].tolist() == [7000, 8000]
    # 7000 is 981/1000 of the way from 6019 to 7019: 100 + 0.981 * 200.
    assert table["published_mean"].tolist() == pytest.approx([296.2, 496.2])
    assert table["published_std"].tolist() == pytest.approx([29.62, 49.62])
    assert table["iqm"].tolist() == [3, 4]
    # The mean length is over the ok runs only; a step without lengths stays NaN.
    assert table["mean_length"].iloc[0] == 200
    assert pd.isna(table["mean_length"].iloc[1])


def test_variants_without_a_published_curve_or_runs_are_left_out(published):
    iqm = _iqm("pmac", [7000], [3])
    assert published_table(iqm, _curves("pmac", []), published).empty
    assert published_table(pd.DataFrame(), _curves("mbpo", []), published).empty


def test_report_section_shows_every_5000_steps_and_the_last(published):
    iqm = _iqm("mbpo", [7000, 8000], [3, 4])
    table = published_table(iqm, _curves("mbpo", []), published)
    html = "".join(published_section(table))
    assert "Against the published curves" in html
    assert ">8000<" in html and ">7000<" not in html  # 8000 is the last matched step
    assert published_section(table.iloc[0:0]) == []


@pytest.mark.parametrize(
    "text, problem",
    [
        ("step,return_mean\n6019,100\n", "needs rows with columns"),
        ("step,return_mean,return_std\n", "needs rows with columns"),
        ("step,return_mean,return_std\n6019,abc,10\n", "is not a number"),
        ("step,return_mean,return_std\n6019,nan,10\n", "is not a number"),
    ],
)
def test_a_damaged_published_curve_is_one_clear_error(tmp_path, text, problem):
    (tmp_path / "mbpo_hopper.csv").write_text(text)
    with pytest.raises(ConfigError, match=problem):
        published_curves(tmp_path)


def test_the_shipped_published_curves_read():
    curves = published_curves()
    assert ("mbpo", "hopper") in curves
    hopper = curves[("mbpo", "hopper")]
    assert hopper["step"].is_monotonic_increasing and len(hopper) == 120
