"""The PMAC paper's figures (Fig. 1-4, C.2), the co-adaptation gap and the fixed-horizon
study: each a function of the loaded `Data` returning a figure or raising `Skip`."""

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
    plot_band,
    subplot_grid,
)
from harness.analysis.runs import Run


def fig1_global_local(d: Data):
    """MBPO's one-step error on the whole buffer (global) vs the current policy (local)."""
    exp = "main"
    v = pick_variants(d, exp, ["mbpo"])[0]
    envs = d.exp(exp)["envs"]
    fig, axes = subplot_grid(len(envs))
    found = False
    for ax, env in zip(axes, envs, strict=True):
        for split, style in (("global", "--"), ("local", "-")):
            df = d.series(v, env, "model", "error", ("split", split))
            if df.empty:
                continue
            found = True
            g = df.groupby("step")["error"]
            ax.plot(g.mean().index, g.mean().values, style, color=colour(v), label=f"MBPO {split}")
            ax.fill_between(
                g.mean().index,
                g.mean() - g.std(ddof=0).fillna(0),
                g.mean() + g.std(ddof=0).fillna(0),
                color=colour(v),
                alpha=0.15,
            )
        ax.set(title=env, xlabel="env steps", ylabel="one-step MSE", yscale="log")
        add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok MBPO run has model.csv")
    return fig


def fig2_curves(d: Data):
    exp = "main"
    return per_env_figure(d, exp, pick_variants(d, exp), "eval", "return", "return (mean ± std)")


def fig2_iqm(d: Data):
    exp = "main"
    d.exp(exp)
    df = d.table("curves_iqm")
    if df.empty or not (df["experiment"] == exp).any():
        raise Skip("no IQM curves for main (no ok runs)")
    df = df[(df["experiment"] == exp) & (df["scale"] == "return")]
    envs = list(dict.fromkeys(df["env"]))
    fig, axes = subplot_grid(len(envs))
    for ax, env in zip(axes, envs, strict=True):
        for v, g in df[df["env"] == env].groupby("variant", sort=False):
            ax.plot(g["step"], g["iqm"], color=colour(v), label=f"{v} (n={g['n_seeds'].iloc[0]})")
            ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=colour(v), alpha=0.2)
        ax.set(title=env, xlabel="env steps", ylabel="return (IQM, 95% CI)")
        add_legend(ax)
    return fig


def fig3abc_one_step(d: Data):
    exp = "main"
    return per_env_figure(
        d,
        exp,
        pick_variants(d, exp, ["pmac", "mbpo"]),
        "model",
        "error",
        "local one-step MSE",
        ("split", "local"),
        log=True,
    )


def fig3d_compounding(d: Data):
    """h-step error vs h, each run's mean over its evaluations, then mean +- std over seeds."""
    exp = "main"
    variants, envs = pick_variants(d, exp, ["pmac", "mbpo"]), d.exp(exp)["envs"]
    fig, axes = subplot_grid(len(envs))
    found = False
    for ax, env in zip(axes, envs, strict=True):
        for v in variants:
            df = d.series(v, env, "compounding", "error")
            if df.empty:
                continue
            found = True
            plot_band(
                ax,
                df.groupby(["seed", "horizon"], as_index=False)["error"].mean(),
                "horizon",
                "error",
                v,
            )
        ax.set(title=env, xlabel="rollout step h", ylabel="compounding error (L2)")
        add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok PMAC/MBPO run has compounding.csv")
    return fig


def fig3ef_visitation(d: Data):
    """Q-value quantiles of the current policy, the PMAC mixture and the uniform buffer at
    the last evaluation (pooled over seeds)."""
    exp = "main"
    variants, envs = pick_variants(d, exp, ["pmac", "mbpo"]), d.exp(exp)["envs"]
    fig, axes = plt.subplots(
        len(envs), len(variants), squeeze=False, figsize=(4.2 * len(variants), 3.2 * len(envs))
    )
    styles = {"policy": "-", "mixture": "--", "uniform": ":"}
    found = False
    for i, env in enumerate(envs):
        for j, v in enumerate(variants):
            ax = axes[i][j]
            df = d.series(v, env, "visitation", "q_value")
            if not df.empty:
                found = True
                last = df[df["step"] == df["step"].max()]
                for src, g in last.groupby("source"):
                    m = g.groupby("q_quantile")["q_value"].mean()
                    ax.plot(m.values, m.index, styles.get(src, "-"), color=colour(v), label=src)
            ax.set(title=f"{v} on {env}", xlabel="Q value", ylabel="quantile")
            add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok PMAC/MBPO run has visitation.csv")
    return fig


def fig4_mechanism(d: Data):
    exp = "mechanism"
    return per_env_figure(d, exp, pick_variants(d, exp), "eval", "return", "return (mean ± std)")


def _alpha(run: Run) -> float | None:
    pm = run.config.get("hyperparameters", {}).get("pmac")
    return float(pm["alpha"]) if isinstance(pm, dict) and "alpha" in pm else None


def figc2_alpha(d: Data):
    """Final return and mean local one-step error vs alpha; MBPO (uniform) as a line."""
    exp = "alpha_sweep"
    variants, envs = pick_variants(d, exp), d.exp(exp)["envs"]
    fig, axes = plt.subplots(len(envs), 2, squeeze=False, figsize=(9, 3.2 * len(envs)))
    found = False
    for i, env in enumerate(envs):
        rows = []
        for v in variants:
            for r in d.runs_of(v, env):
                rows.append(
                    {
                        "variant": v,
                        "alpha": _alpha(r),
                        "final": r.final_return(),
                        "error": r.mean_of("model", "error", ("split", "local")),
                    }
                )
        df = pd.DataFrame(rows)
        if df.empty:
            continue
        found = True
        for k, col in enumerate(("final", "error")):
            ax = axes[i][k]
            sweep = df[df["alpha"].notna()].groupby("alpha")[col].agg(["mean", "std"])
            ax.errorbar(
                sweep.index,
                sweep["mean"],
                yerr=sweep["std"].fillna(0),
                marker="o",
                color=colour("pmac"),
                label="PMAC",
            )
            base = df[df["alpha"].isna()]
            for v, g in base.groupby("variant"):
                ax.axhline(g[col].mean(), color=colour(v), ls="--", label=f"{v} (uniform)")
            ax.set(
                title=env,
                xlabel="policy-adaptation rate alpha",
                ylabel="final return" if col == "final" else "local one-step MSE",
            )
            add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok run in the alpha sweep")
    return fig


def coadaptation_gap(d: Data):
    """Model return minus real return over the longest diagnosed horizon, over training."""
    exp = "main"
    variants, envs = pick_variants(d, exp, ["pmac", "mbpo"]), d.exp(exp)["envs"]
    fig, axes = subplot_grid(len(envs))
    found = False
    for ax, env in zip(axes, envs, strict=True):
        for v in variants:
            df = d.series(v, env, "coadaptation", "model_return")
            if df.empty:
                continue
            found = True
            df = df[df["horizon"] == df["horizon"].max()]
            df = df.assign(gap=df["model_return"] - df["real_return"])
            per_seed = df.groupby(["seed", "step"], as_index=False)["gap"].mean()
            plot_band(ax, per_seed, "step", "gap", v)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set(title=env, xlabel="env steps", ylabel="model - real return (longest h)")
        add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok PMAC/MBPO run has coadaptation.csv")
    return fig


def _fixed_horizon(run: Run) -> int | None:
    sched = run.config.get("hyperparameters", {}).get("rollout_schedule")
    if isinstance(sched, list) and len(sched) == 4 and sched[2] == sched[3]:
        return int(sched[2])
    return None


def horizon_study(d: Data):
    """Fixed rollout horizons: final return and mean compounding error at each model step
    h, per algorithm (variants whose schedule [a, b, h, h] is constant)."""
    exp = "horizon"
    variants, envs = pick_variants(d, exp), d.exp(exp)["envs"]
    rows = [
        {
            "algo": r.algo,
            "H": _fixed_horizon(r),
            "final": r.final_return(),
            "error": r.mean_of("compounding", "error"),
        }
        for v in variants
        for env in envs
        for r in d.runs_of(v, env)
    ]
    df = pd.DataFrame(rows)
    if df.empty or df["H"].isna().all():
        raise Skip("no ok fixed-horizon run")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, (col, label) in enumerate(
        (("final", "final return"), ("error", "compounding error (mean over h, steps)"))
    ):
        for algo, g in df.dropna(subset=["H"]).groupby("algo"):
            m = g.groupby("H")[col].agg(["mean", "std"])
            axes[k].errorbar(
                m.index,
                m["mean"],
                yerr=m["std"].fillna(0),
                marker="o",
                color=colour(algo),
                label=algo,
            )
        axes[k].set(xlabel="fixed rollout horizon H", ylabel=label, title=", ".join(envs))
        add_legend(axes[k])
    return fig
