"""rliable's figures per experiment (Agarwal et al. 2021): interval estimates, performance
profiles, probability of improvement, sample-efficiency curves, from the aggregation's
tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from harness.analysis.figures.common import (
    Data,
    Skip,
    add_legend,
    colour,
)


def _experiment_table(d: Data, name: str, exp: str) -> pd.DataFrame:
    d.exp(exp)
    df = d.table(name)
    if df.empty or "experiment" not in df or not (df["experiment"] == exp).any():
        raise Skip(f"{name}.csv has no rows for {exp} (no ok runs or no reference scores)")
    return df[df["experiment"] == exp]


def rliable_intervals(d: Data, exp: str):
    df = _experiment_table(d, "intervals", exp)
    metrics = list(dict.fromkeys(df["metric"]))
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.2 * len(metrics), 0.5 + 0.45 * df["variant"].nunique()),
        squeeze=False,
    )  # noqa: E501
    for ax, metric in zip(axes[0], metrics, strict=True):
        g = df[df["metric"] == metric].reset_index(drop=True)
        for k, row in g.iterrows():
            ax.plot(
                [row["ci_low"], row["ci_high"]],
                [k, k],
                lw=6,
                alpha=0.6,
                color=colour(row["variant"]),
            )
            ax.plot([row["estimate"]], [k], "k|", ms=12)
        ax.set_yticks(range(len(g)), g["variant"] if metric == metrics[0] else [""] * len(g))
        ax.set(title=metric.replace("_", " "), xlabel="normalised score")
    return fig


def rliable_profiles(d: Data, exp: str):
    df = _experiment_table(d, "profiles", exp)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for v, g in df.groupby("variant", sort=False):
        ax.plot(g["tau"], g["fraction"], color=colour(v), label=v)
        ax.fill_between(g["tau"], g["ci_low"], g["ci_high"], color=colour(v), alpha=0.2)
    ax.set(
        xlabel="normalised score tau",
        ylabel="fraction of runs with score > tau",
        title=f"{exp}: performance profiles",
    )
    add_legend(ax)
    return fig


def rliable_improvement(d: Data, exp: str):
    df = _experiment_table(d, "improvement", exp).dropna(subset=["estimate"])
    if df.empty:
        raise Skip(f"no computable P(improvement) for {exp}")
    fig, ax = plt.subplots(figsize=(5.5, 0.6 + 0.5 * len(df)))
    for k, (_, row) in enumerate(df.iterrows()):
        ax.plot([row["ci_low"], row["ci_high"]], [k, k], lw=6, alpha=0.6, color=colour(row["y"]))
        ax.plot([row["estimate"]], [k], "k|", ms=12)
    ax.axvline(0.5, color="0.5", ls="--")
    ax.set_yticks(range(len(df)), [f"P({r.x} > {r.y})" for r in df.itertuples()])
    ax.set(
        xlim=(0, 1),
        xlabel="probability of improvement (final return)",
        title=f"{exp}: probability of improvement",
    )
    return fig


def rliable_sample_efficiency(d: Data, exp: str):
    df = _experiment_table(d, "curves_iqm", exp)
    df = df[df["scale"] == "normalised"]
    if df.empty:
        raise Skip(
            f"{exp}: no environment with a reference score (raw IQM curves are in the "
            "learning-curve figures)"
        )
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for v, g in df.groupby("variant", sort=False):
        ax.plot(g["step"], g["iqm"], color=colour(v), label=f"{v} (n={g['n_seeds'].iloc[0]})")
        ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=colour(v), alpha=0.2)
    ax.set(
        xlabel="env steps",
        ylabel="IQM normalised score (95% CI)",
        title=f"{exp}: sample efficiency over {df['env'].iloc[0]}",
    )
    add_legend(ax)
    return fig
