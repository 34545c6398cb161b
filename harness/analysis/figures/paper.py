"""The PMAC paper's figures (Fig. 1-4, C.2), the co-adaptation gap and the fixed-horizon
study: each a function of the loaded `Data` returning a figure or raising `Skip`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from harness.analysis.figures.common import (
    LOG_BAND,
    Data,
    Skip,
    add_legend,
    colour,
    curves_with_lengths,
    env_panels,
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

    def panel(ax, env: str) -> bool:
        found = False
        for split, style in (("global", "--"), ("local", "-")):
            df = d.series(v, env, "model", "error", ("split", split))
            if df.empty:
                continue
            found = True
            plot_band(ax, df, "step", "error", v, f"MBPO {split}", log=True, style=style)
        ax.set(title=env, xlabel="env steps", ylabel=f"one-step MSE\n({LOG_BAND})", yscale="log")
        return found

    return env_panels(d.exp(exp)["envs"], panel, "no ok MBPO run has model.csv")


def fig2_curves(d: Data):
    exp = "main"
    return curves_with_lengths(d, exp, pick_variants(d, exp), "return (mean ± std)")


def fig2_iqm(d: Data):
    return iqm_curves(d, "main")


def fig3gh_weighting(d: Data):
    """Fig. 3g/h: the weighting schemes' learning curves (IQM with 95% CIs, as Fig. 2's)."""
    return iqm_curves(d, "weighting")


def iqm_curves(d: Data, exp: str):
    """The experiment's IQM return per evaluation step with its 95% CI, one panel per env."""
    d.exp(exp)
    df = d.table("curves_iqm")
    if df.empty or not (df["experiment"] == exp).any():
        raise Skip(f"no IQM curves for {exp} (no ok runs)")
    df = df[(df["experiment"] == exp) & (df["scale"] == "return")]
    envs = list(dict.fromkeys(df["env"]))

    def panel(ax, env: str) -> bool:
        for v, g in df[df["env"] == env].groupby("variant", sort=False):
            ax.plot(g["step"], g["iqm"], color=colour(v), label=f"{v} (n={g['n_seeds'].iloc[0]})")
            ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=colour(v), alpha=0.2)
        ax.set(title=env, xlabel="env steps", ylabel="return (IQM, 95% CI)")
        return True

    return env_panels(envs, panel, f"no IQM curves for {exp} (no ok runs)")


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


def model_reward_error(d: Data):
    """model.csv's reward rows (`target == reward`): the local one-step error of the
    predicted reward, PMAC vs MBPO, beside Fig. 3a-c's state error."""
    exp = "main"
    try:
        return per_env_figure(
            d, exp, pick_variants(d, exp, ["pmac", "mbpo"]), "model:reward", "error",
            "local one-step reward MSE", ("split", "local"), log=True,
        )  # fmt: skip
    except Skip:
        raise Skip("no ok PMAC/MBPO run's model.csv has reward rows (a `target` column)") from None


def fig3d_compounding(d: Data):
    """h-step error vs h, each run's mean over its evaluations, then mean +- std over seeds."""
    exp = "main"
    variants = pick_variants(d, exp, ["pmac", "mbpo"])

    def panel(ax, env: str) -> bool:
        found = False
        for v in variants:
            df = d.series(v, env, "compounding", "error")
            if df.empty:
                continue
            found = True
            per_seed = df.groupby(["seed", "horizon"], as_index=False)["error"].mean()
            plot_band(ax, per_seed, "horizon", "error", v)
        ax.set(title=env, xlabel="rollout step h", ylabel="compounding error (L2)")
        return found

    skip = "no ok PMAC/MBPO run has compounding.csv"
    return env_panels(d.exp(exp)["envs"], panel, skip)


def fig3ef_visitation(d: Data):
    """Q-value quantiles of the current policy, the PMAC mixture and the uniform buffer at
    the last evaluation (pooled over seeds; the step is named in each title)."""
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
            step = f" at step {int(df['step'].max()):,}" if not df.empty else ""
            ax.set(title=f"{v} on {env}{step}", xlabel="Q value", ylabel="quantile")
            add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok PMAC/MBPO run has visitation.csv")
    return fig


def _own_source(run: Run) -> str:
    """visitation.csv's source of the run's own weighting: `mixture` (PMAC's age), `uniform`
    (MBPO), or the scheme's name."""
    scheme = _weighting(run).get("scheme", "uniform")
    return {"age": "mixture"}.get(scheme, scheme)


def _weighting(run: Run) -> dict:
    """The run's `weighting` block; a run written before the weighting schemes has PMAC's
    mixture as `pmac: {alpha, ...}` (MBPO: null) and reads as the `age` scheme."""
    hp = run.config.get("hyperparameters", {})
    if isinstance(hp.get("weighting"), dict):
        return hp["weighting"]
    old = hp.get("pmac")
    return {"scheme": "age", "age": {"alpha": old["alpha"]}} if isinstance(old, dict) else {}


def weighting_visitation(d: Data):
    """Fig. 1c/d-style, per scheme: Q-value quantiles of the current policy, the uniform
    buffer and the scheme's own weighting of it at the last evaluation (pooled over seeds;
    each run's own critic), so the panels show how close each scheme's data is to its
    current policy's."""
    exp = "weighting"
    variants, envs = pick_variants(d, exp), d.exp(exp)["envs"]
    fig, axes = plt.subplots(
        len(envs), len(variants), squeeze=False, figsize=(3.6 * len(variants), 3.2 * len(envs))
    )
    found = False
    for i, env in enumerate(envs):
        for j, v in enumerate(variants):
            ax, runs = axes[i][j], d.runs_of(v, env)
            df = d.series(v, env, "visitation", "q_value")
            if df.empty:
                ax.set(title=f"{v} on {env}: no visitation.csv")
                continue
            found = True
            last = df[df["step"] == df["step"].max()]
            own = _own_source(runs[0])
            lines = [("policy", "-", "current policy"), ("uniform", ":", "uniform buffer")]
            if own == "uniform":
                lines[1] = ("uniform", ":", "uniform buffer = own weighting")
            else:
                lines.append((own, "--", f"own weighting ({own})"))
            for src, style, label in lines:
                m = last[last["source"] == src].groupby("q_quantile")["q_value"].mean()
                ax.plot(m.values, m.index, style, color=colour(v), label=label)
            ax.set(title=f"{v} on {env} at step {int(last['step'].max()):,}", xlabel="Q value",
                   ylabel="quantile")  # fmt: skip
            add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok run of the weighting experiment has visitation.csv")
    return fig


def fig4_mechanism(d: Data):
    exp = "mechanism"
    return curves_with_lengths(d, exp, pick_variants(d, exp), "return (mean ± std)")


def _alpha(run: Run) -> float | None:
    """The run's policy-adaptation rate, None when it does not weight by age (MBPO)."""
    w = _weighting(run)
    return float(w["age"]["alpha"]) if w.get("scheme") == "age" else None


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
                label="PMAC (mean ± std over seeds)",
            )
            base = df[df["alpha"].isna()]
            for v, g in base.groupby("variant"):
                ax.axhline(g[col].mean(), color=colour(v), ls="--", label=f"{v} (uniform)")
            ax.set(
                title=env,
                xlabel="policy-adaptation rate alpha",
                ylabel="final return (mean ± std)"
                if col == "final"
                else "local one-step MSE (mean ± std)",
            )
            add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok run in the alpha sweep")
    return fig


def coadaptation_gap(d: Data):
    """Model return minus real return over the longest diagnosed horizon, over training."""
    exp = "main"
    variants = pick_variants(d, exp, ["pmac", "mbpo"])

    def panel(ax, env: str) -> bool:
        found = False
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
        return found

    skip = "no ok PMAC/MBPO run has coadaptation.csv"
    return env_panels(d.exp(exp)["envs"], panel, skip)


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
        (
            ("final", "final return (mean ± std over seeds)"),
            ("error", "compounding error (mean over h, steps; mean ± std)"),
        )
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


def steps_to_threshold(d: Data):
    """The sample-efficiency claim's statistic: per environment, the IQM return curves of
    PMAC and MBPO on the evaluation steps both have, MBPO's final IQM (the threshold) and
    the first step each reaches it; the ratio with its 95% CI in the title."""
    exp = "main"
    d.exp(exp)
    curves, ratios = d.table("curves_iqm"), d.table("steps_to_threshold")
    if curves.empty or ratios.empty or not (ratios["experiment"] == exp).any():
        raise Skip("no PMAC and MBPO IQM curves in main (no ok runs of both)")
    ratios = ratios[ratios["experiment"] == exp]
    curves = curves[(curves["experiment"] == exp) & (curves["scale"] == "return")]
    fig, axes = subplot_grid(len(ratios))
    for ax, (_, r) in zip(axes, ratios.iterrows(), strict=True):
        env = r["env"]
        fast = curves[(curves["env"] == env) & (curves["variant"] == r["fast"])]
        slow = curves[(curves["env"] == env) & (curves["variant"] == r["slow"])]
        common = sorted(set(fast["step"]) & set(slow["step"]))
        if not common:
            ax.set(title=f"{env}: no evaluation step in common")
            continue
        threshold = float(slow.set_index("step").loc[common[-1], "iqm"])
        for v, g in ((r["fast"], fast), (r["slow"], slow)):
            g = g[g["step"].isin(common)]
            n = g["n_seeds"].iloc[0]
            ax.plot(g["step"], g["iqm"], color=colour(v), label=f"{v} IQM (n={n})")
            ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=colour(v), alpha=0.2)
            hit = g[g["iqm"] >= threshold]
            if not hit.empty:
                ax.axvline(hit["step"].iloc[0], color=colour(v), ls=":", lw=1)
        ax.axhline(threshold, color="0.3", ls="--", lw=0.9, label="MBPO's final IQM")
        ratio = (
            f"ratio {r['estimate']:.2g} [{r['ci_low']:.2g}, {r['ci_high']:.2g}]"
            if pd.notna(r["estimate"])
            else "ratio n/a"
        )
        ax.set(title=f"{env}: {ratio}", xlabel="env steps", ylabel="return (IQM, 95% CI)")
        add_legend(ax)
    return fig


def fig1cd_visitation(d: Data):
    """Counterpart of paper Fig. 1c/d from visitation.csv: at every evaluation step s the
    Q-value quantiles of the policy of step s (its evaluation state-actions), each drawn in
    a colour from early (light) to late (dark), so the policies of earlier steps are the
    historical ones and the last the current one; at the last step also the uniform buffer
    (all historical policies' data pooled) and the PMAC mixture. Each policy's Q values come
    from its own step's critic: the paper scores every historical policy's samples with one
    converged critic, which needs samples per historical policy that visitation.csv does not
    keep."""
    exp = "main"
    variants, envs = pick_variants(d, exp, ["pmac", "mbpo"]), d.exp(exp)["envs"]
    fig, axes = plt.subplots(
        len(envs), len(variants), squeeze=False, figsize=(4.6 * len(variants), 3.4 * len(envs))
    )
    cmap = plt.get_cmap("viridis_r")
    found = False
    for i, env in enumerate(envs):
        for j, v in enumerate(variants):
            ax = axes[i][j]
            df = d.series(v, env, "visitation", "q_value")
            if df.empty:
                ax.set(title=f"{v} on {env}: no visitation.csv")
                continue
            found = True
            steps = sorted(df["step"].unique())
            pol = df[df["source"] == "policy"]
            for k, step in enumerate(steps):
                m = pol[pol["step"] == step].groupby("q_quantile")["q_value"].mean()
                shade = cmap(0.15 + 0.85 * k / max(1, len(steps) - 1))
                named = len(steps) <= 6 or k in (0, len(steps) - 1)  # a legend of <= 6 rows
                label = f"policy at step {int(step):,}" if named else None
                ax.plot(m.values, m.index, color=shade, label=label, lw=1.2)
            last = df[df["step"] == steps[-1]]
            for src, style in (("uniform", ":"), ("mixture", "--")):
                m = last[last["source"] == src].groupby("q_quantile")["q_value"].mean()
                if not m.empty:
                    ax.plot(m.values, m.index, style, color="k", label=f"{src} at last step")
            ax.set(
                title=f"{v} on {env}: current = step {int(steps[-1]):,}",
                xlabel="Q value (that step's critic)",
                ylabel="quantile",
            )
            add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok PMAC/MBPO run has visitation.csv")
    d.note(
        "each policy is scored by its own step's critic; scoring every historical policy "
        "with the current critic (as paper Fig. 1c/d) needs per-policy samples that "
        "visitation.csv does not keep"
    )
    return fig
