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


def _experiment_table(d: Data, name: str, exp: str, why: str) -> pd.DataFrame:
    """The rows of aggregation table `name` for `exp`; Skip with `why` (the reason that
    table has none for this experiment) when it has none."""
    d.exp(exp)
    df = d.table(name)
    if df.empty or "experiment" not in df or not (df["experiment"] == exp).any():
        raise Skip(f"{name}.csv has no rows for {exp}: {why}")
    return df[df["experiment"] == exp]


NO_NORMALISED = "no ok run in an environment with a reference score (config/scores.yaml)"


def rliable_intervals(d: Data, exp: str):
    df = _experiment_table(d, "intervals", exp, NO_NORMALISED)
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
    df = _experiment_table(d, "profiles", exp, NO_NORMALISED)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.set_xlim(df["tau"].min(), df["tau"].max())  # the scores' range, not 0-1
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


STATISTIC_LABEL = {
    "final_return": "P({x} > {y})",
    "auc": "P({x} area under the curve > {y})",
    "-local_error": "P({x} local error < {y})",
    "-compounding_error": "P({x} compounding error < {y})",
}


def improvement_label(row) -> str:
    """The row's label; a degenerate P of 0 or 1 with a zero-width CI says "all pairs"."""
    label = STATISTIC_LABEL.get(row.statistic, "P({x} > {y})").format(x=row.x, y=row.y)
    if row.ci_low == row.ci_high == row.estimate and row.estimate in (0.0, 1.0):
        label += f" = {row.estimate:g}, all pairs"
    return label


def rliable_improvement(d: Data, exp: str):
    """P(X > Y) with its 95% CI for every pair of aggregate.improvement_pairs; a point marks
    every estimate, so a degenerate 0 or 1 (zero-width CI) is visible at the edge."""
    df = _experiment_table(
        d, "improvement", exp, "it has no pair to compare (no PMAC, no Dyna-Q vs DQN, no claim)"
    ).dropna(subset=["estimate"])
    if df.empty:
        raise Skip(f"no computable P(improvement) for {exp} (no ok runs of both sides)")
    fig, ax = plt.subplots(figsize=(6.0, 0.8 + 0.5 * len(df)))
    for k, row in enumerate(df.itertuples()):
        ax.plot([row.ci_low, row.ci_high], [k, k], lw=6, alpha=0.6, color=colour(row.y))
        ax.plot([row.estimate], [k], "o", ms=6, color=colour(row.y), mec="k", zorder=3)
    ax.axvline(0.5, color="0.5", ls="--")
    ax.set_yticks(range(len(df)), [improvement_label(r) for r in df.itertuples()])
    ax.set_ylim(-0.6, len(df) - 0.4)
    ax.set(
        xlim=(-0.04, 1.04),
        xlabel="probability of improvement (final return unless named), 95% CI",
        title=f"{exp}: probability of improvement",
    )
    return fig


def rliable_sample_efficiency(d: Data, exp: str):
    df = _experiment_table(d, "curves_iqm", exp, "no ok run with evaluations")
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
