"""The Dyna-Q CartPole study's figures: learning curves, the horizon sweep, the adaptive
horizon."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from harness.analysis.figures.common import (
    Data,
    Skip,
    add_legend,
    colour,
    curves_with_lengths,
    per_env_figure,
    pick_variants,
)
from harness.analysis.runs import Run


def cartpole_curves(d: Data):
    """Learning curves with episode lengths; the claims' thresholds as lines: Dyna-Q's 195
    and the model-free plateau's band 125-175 (claims.DYNA_Q, claims.MODEL_FREE)."""
    exp = "cartpole"
    return curves_with_lengths(
        d, exp, pick_variants(d, exp), "return (mean ± std)",
        hlines=[(195.0, "claim: Dyna-Q >= 195", ":"), (150.0, "claim: DQN ~150 (125-175)", "--")],
        spans=[(125.0, 175.0)],
    )  # fmt: skip


def _horizon(run: Run) -> int | None:
    h = run.config.get("hyperparameters", {}).get("horizon")
    return int(h) if isinstance(h, int) else None


def cartpole_horizon(d: Data):
    """Final return vs fixed horizon H (Dyna-Q variants), adaptive and DQN as lines."""
    exp = "cartpole"
    variants, envs = pick_variants(d, exp), d.exp(exp)["envs"]
    rows = [
        {"variant": v, "algo": r.algo, "H": _horizon(r), "final": r.final_return()}
        for v in variants
        for env in envs
        for r in d.runs_of(v, env)
    ]
    df = pd.DataFrame(rows)
    if df.empty or not (df["algo"] == "dyna_q").any():
        raise Skip("no ok fixed-horizon Dyna-Q run")
    fixed = df[df["algo"] == "dyna_q"].groupby("H")["final"].agg(["mean", "std"])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.errorbar(
        fixed.index,
        fixed["mean"],
        yerr=fixed["std"].fillna(0),
        marker="o",
        color=colour("dyna_q"),
        label="Dyna-Q, fixed H (mean ± std)",
    )
    for v, g in df[df["algo"] != "dyna_q"].groupby("variant"):
        ax.axhline(g["final"].mean(), color=colour(v), ls="--", label=f"{v} (mean)")
    ax.axhline(195, color="0.3", ls=":", label="seed 001: 195")
    ax.set(
        xlabel="rollout horizon H",
        ylabel="final return (mean ± std over seeds)",
        title="CartPole: horizon sweep",
    )
    add_legend(ax)
    return fig


def cartpole_adaptive(d: Data):
    """Realised mean imagined rollout length over training (adaptive vs fixed H)."""
    exp = "cartpole"
    variants = [v for v in pick_variants(d, exp) if v.startswith("dyna_q")]
    return per_env_figure(
        d, exp, variants, "train", "rollout_length", "mean imagined rollout length"
    )
