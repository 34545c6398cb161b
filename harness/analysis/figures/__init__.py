"""`mbrl-bench figures`: the PMAC paper's figures (Fig. 1-4, C.2), the rliable figures and
the CartPole study, from stored run directories and the aggregation's tables only.

Each figure is a function returning a matplotlib figure or raising `Skip(reason)` when its
data is absent; the reason is logged and recorded in `figures/manifest.json`, which the
report reads. Every variant has one colour in every figure (`COLOURS`, fixed by the order
of config/experiments.yaml). Curves over seeds are mean +- std (the paper's Fig. 2 style)
unless the figure says IQM with 95% CI, or, on a log-scaled axis, the mean in the seeds'
range (`common.LOG_BAND`: mean - std is not drawable there); only `ok` runs are plotted.

The figures: `paper` (Fig. 1-4, C.2, the steps-to-threshold claim and the horizon study),
`rliable` and `critic` (per experiment), `cartpole` (the Dyna-Q study); what they share:
`common`. A figure may record what it leaves out (`Data.note`): the manifest's `notes`.
To add one, write its function in the module it belongs to and list it in `FIGURES`,
`RLIABLE` or `PER_EXPERIMENT` below.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import seaborn as sns

from harness.analysis.figures.cartpole import cartpole_adaptive, cartpole_curves, cartpole_horizon
from harness.analysis.figures.common import Data, Skip, save_figure
from harness.analysis.figures.critic import critic_bias_temperature
from harness.analysis.figures.paper import (
    coadaptation_gap,
    fig1_global_local,
    fig1cd_visitation,
    fig2_curves,
    fig2_iqm,
    fig3abc_one_step,
    fig3d_compounding,
    fig3ef_visitation,
    fig3gh_weighting,
    fig4_mechanism,
    figc2_alpha,
    horizon_study,
    model_reward_error,
    steps_to_threshold,
    weighting_visitation,
)
from harness.analysis.figures.rliable import (
    rliable_improvement,
    rliable_intervals,
    rliable_profiles,
    rliable_sample_efficiency,
)
from harness.job.rundir import atomic_write_json

# name -> (experiment shown in, title, function)
FIGURES: dict[str, tuple[str, str, Callable[[Data], Any]]] = {
    "fig1_global_local_error": (
        "main",
        "Fig. 1a/b: MBPO global vs local one-step error",
        fig1_global_local,
    ),
    "fig1cd_visitation": (
        "main",
        "Fig. 1c/d counterpart: Q-value visitation of each evaluation step's policy",
        fig1cd_visitation,
    ),
    "fig2_learning_curves": (
        "main",
        "Fig. 2: learning curves and episode lengths (mean ± std)",
        fig2_curves,
    ),
    "fig2_learning_curves_iqm": ("main", "Fig. 2: learning curves (IQM, 95% CI)", fig2_iqm),
    "steps_to_threshold": (
        "main",
        "Sample efficiency: steps to MBPO's final IQM return",
        steps_to_threshold,
    ),
    "fig3abc_one_step_error": (
        "main",
        "Fig. 3a-c: local one-step state error, PMAC vs MBPO",
        fig3abc_one_step,
    ),
    "model_reward_error": (
        "main",
        "Local one-step reward error, PMAC vs MBPO (beside Fig. 3a-c's state error)",
        model_reward_error,
    ),
    "fig3d_compounding_error": ("main", "Fig. 3d: compounding error vs horizon", fig3d_compounding),
    "fig3ef_visitation": (
        "main",
        "Fig. 3e/f: Q-value visitation (last evaluation)",
        fig3ef_visitation,
    ),
    "coadaptation_gap": ("main", "Co-adaptation gap over training", coadaptation_gap),
    "fig3gh_weighting": (
        "weighting",
        "Fig. 3g/h: weighting schemes, learning curves (IQM, 95% CI)",
        fig3gh_weighting,
    ),
    "weighting_visitation": (
        "weighting",
        "Weighting schemes: Q-value visitation of each scheme's own data (last evaluation)",
        weighting_visitation,
    ),
    "fig4_mechanism": (
        "mechanism",
        "Fig. 4: mechanism ablation, returns and episode lengths (mean ± std)",
        fig4_mechanism,
    ),
    "figC2_alpha_sweep": ("alpha_sweep", "Fig. C.2: alpha sweep (mean ± std)", figc2_alpha),
    "horizon_study": (
        "horizon",
        "Fixed rollout horizons: return and compounding error (mean ± std)",
        horizon_study,
    ),
    "cartpole_learning_curves": (
        "cartpole",
        "CartPole: learning curves and episode lengths (mean ± std)",
        cartpole_curves,
    ),
    "cartpole_horizon_sweep": (
        "cartpole",
        "CartPole: horizon sweep (mean ± std)",
        cartpole_horizon,
    ),
    "cartpole_adaptive_horizon": ("cartpole", "CartPole: adaptive horizon", cartpole_adaptive),
}
RLIABLE = {
    "rliable_intervals": ("final normalised score, 95% CIs", rliable_intervals),
    "rliable_profiles": ("performance profiles", rliable_profiles),
    "rliable_improvement": ("probability of improvement", rliable_improvement),
    "rliable_sample_efficiency": ("sample-efficiency curve", rliable_sample_efficiency),
}
# Drawn once per experiment, as f"{kind}_{experiment}": the rliable figures and the critic's.
PER_EXPERIMENT = {
    **RLIABLE,
    "critic": ("Q bias and temperature (MBPO family)", critic_bias_temperature),
}


def figures(profile: str, runs_root: Path, agg_root: Path, out_root: Path) -> Path:
    """Draw every figure whose data exists; write figures/manifest.json."""
    d = Data(profile, runs_root, agg_root)
    out = out_root / profile / "figures"
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(n, exp, title, lambda f=f: f(d)) for n, (exp, title, f) in FIGURES.items()]
    for exp in d.experiments:
        for kind, (title, f) in PER_EXPERIMENT.items():
            jobs.append((f"{kind}_{exp}", exp, f"{exp}: {title}", lambda f=f, e=exp: f(d, e)))
    manifest: dict[str, Any] = {}
    sns.set_theme(style="whitegrid", context="paper")
    for order, (name, exp, title, draw) in enumerate(jobs):
        entry: dict[str, Any] = {"experiment": exp, "title": title, "order": order}
        d.notes = []
        try:
            fig = draw()
            fig.tight_layout()
            fig.suptitle(f"{title}\n[{d.summary['label']}]", fontsize=9, y=1.0, va="bottom")
            save_figure(fig, out / name)
            entry["files"] = [f"{name}.png", f"{name}.pdf"]
            if d.notes:
                entry["notes"] = list(d.notes)
        except Skip as why:
            entry["skipped"] = str(why)
            print(f"mbrl-bench figures: skipped {name}: {why}", file=sys.stderr)
        manifest[name] = entry
    atomic_write_json(out / "manifest.json", manifest)
    return out
