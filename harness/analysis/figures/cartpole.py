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
    per_env_figure,
    pick_variants,
)
from harness.analysis.runs import Run


def cartpole_curves(d: Data):
    exp = "cartpole"
    return per_env_figure(d, exp, pick_variants(d, exp), "eval", "return", "return (mean ± std)")


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
        label="Dyna-Q, fixed H",
    )
    for v, g in df[df["algo"] != "dyna_q"].groupby("variant"):
        ax.axhline(g["final"].mean(), color=colour(v), ls="--", label=f"{v} (mean)")
    ax.axhline(195, color="0.3", ls=":", label="seed 001: 195")
    ax.set(xlabel="rollout horizon H", ylabel="final return", title="CartPole: horizon sweep")
    add_legend(ax)
    return fig


def cartpole_adaptive(d: Data):
    """Realised mean imagined rollout length over training (adaptive vs fixed H)."""
    exp = "cartpole"
    variants = [v for v in pick_variants(d, exp) if v.startswith("dyna_q")]
    return per_env_figure(
        d, exp, variants, "train", "rollout_length", "mean imagined rollout length"
    )
