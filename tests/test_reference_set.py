"""The committed reference set (results/reference/quick/, docs/results.md) stays usable: every
run is complete and trusted by today's harness, and it still aggregates into the claim
verdicts `make reference-report` shows, so a change to the run-directory contract or the
statistics that would silently drop the evidence fails here."""

import json

import numpy as np
import pandas as pd
import pytest

from harness.analysis.aggregate import aggregate
from harness.analysis.runs import discover
from tests.conftest import REPO

REFERENCE = REPO / "results" / "reference"
ARMS = {"mbpo", "pmac", "mbpo_ramp"}
STEPS = 30_000


def test_every_reference_run_is_complete_and_trusted():
    runs = discover(REFERENCE / "quick")
    assert {(r.variant, r.seed) for r in runs} == {(v, s) for v in ARMS for s in (0, 1, 2)}
    for run in runs:
        assert run.ok, f"{run.path}: {run.status}"
        assert (run.env, run.profile) == ("hopper", "quick")
        assert run.config["hyperparameters"]["total_steps"] == STEPS
        assert int(run.eval_curve()["step"].max()) == STEPS
        assert run.provenance["git_commit"], f"{run.path}: no commit in provenance.json"
        assert run.table("critic") is not None, f"{run.path}: no critic.csv (issue 13's Q bias)"
    assert not list(REFERENCE.rglob("*.pt")), "checkpoints are never committed"


@pytest.fixture(scope="module")
def reference_tables(tmp_path_factory):
    """`make reference-report`'s aggregate step, with fewer bootstrap replicates (8 s)."""
    return aggregate("quick", REFERENCE, tmp_path_factory.mktemp("agg"), reps=200, envs=["hopper"])


def test_the_reference_set_aggregates_into_claim_verdicts(reference_tables):
    claims = pd.read_csv(reference_tables / "claims.csv").set_index("claim")
    decided = {
        "PMAC: better asymptotic performance than MBPO": "supported",
        "PMAC: lower local one-step model error than MBPO": "supported",
        "PMAC: lower compounding error than MBPO": "supported",
    }
    for claim, verdict in decided.items():
        assert claims.loc[claim, "n_seeds"] == "3 vs 3"
        assert claims.loc[claim, "verdict"] == verdict, claim
    summary = json.loads((reference_tables / "summary.json").read_text())
    assert summary["envs"] == ["hopper"] and not summary["smoke"]


def test_the_30k_table_is_the_seeds_and_the_released_curve(reference_tables):
    """With 3 seeds the IQM is their mean: the 30k table the docs quote is each arm's three
    final evaluations (CI inside their range), and MBPO's row sits beside the released MBPO
    curve interpolated to the same step."""
    curves = pd.read_csv(reference_tables / "curves_iqm.csv")
    at_end = curves[(curves["env"] == "hopper") & (curves["step"] == STEPS)]
    for variant in ARMS:
        rows = at_end[at_end["variant"] == variant]
        assert not rows.empty, f"no 30k IQM for {variant}"
        finals = [r.final_return() for r in discover(REFERENCE / "quick" / variant / "hopper")]
        full = [row for row in rows.itertuples() if row.experiment in ("main", "fidelity")]
        assert full, f"{variant} is in neither main nor fidelity"  # the 3-seed experiments
        for row in full:
            assert row.n_seeds == 3
            assert row.iqm == pytest.approx(sum(finals) / 3)
            assert min(finals) - 1e-9 <= row.ci_low <= row.iqm <= row.ci_high
            assert row.ci_high <= max(finals) + 1e-9
    mbpo = pd.read_csv(reference_tables / "published.csv").set_index(["variant", "step"])
    released = pd.read_csv(REFERENCE / "published" / "mbpo_hopper.csv")
    expected = np.interp(STEPS, released["step"], released["return_mean"])
    assert mbpo.loc[("mbpo", STEPS), "published_mean"] == pytest.approx(expected)
    assert mbpo.loc[("mbpo", STEPS), "iqm"] == pytest.approx(
        at_end[at_end["variant"] == "mbpo"]["iqm"].iloc[0]
    )
