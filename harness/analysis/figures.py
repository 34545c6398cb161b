"""`mbrl-bench figures`: the PMAC paper's figures (Fig. 1-4, C.2), the rliable figures and
the CartPole study, from stored run directories and the aggregation's tables only.

Each figure is a function returning a matplotlib figure or raising `Skip(reason)` when its
data is absent; the reason is logged and recorded in `figures/manifest.json`, which the
report reads. Every variant has one colour in every figure (`COLOURS`, fixed by the order
of config/experiments.yaml). Curves over seeds are mean +- std (the paper's Fig. 2 style)
unless the figure says IQM with 95% CI; only `ok` runs are plotted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness.analysis.runs import Run, discover  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from harness.job.experiments import load_experiments  # noqa: E402
from harness.job.rundir import atomic_write, atomic_write_json  # noqa: E402

_PALETTE = [
    *sns.color_palette("tab10"),
    *sns.color_palette("Dark2"),
    *sns.color_palette("Set1"),
]
COLOURS: dict[str, Any] = {
    v: _PALETTE[i % len(_PALETTE)] for i, v in enumerate(load_experiments()["variants"])
}


class Skip(Exception):
    """A figure whose data is absent: skipped, with the reason logged and reported."""


def colour(variant: str) -> Any:
    return COLOURS.get(variant, "0.4")


class Data:
    """Runs (ok only) and aggregation tables of one profile."""

    def __init__(self, profile: str, runs_root: Path, agg_root: Path) -> None:
        self.agg_dir = agg_root / profile
        if not (self.agg_dir / "summary.json").exists():
            raise ConfigError(f"{self.agg_dir}/summary.json missing: run `mbrl-bench aggregate`")
        self.summary = json.loads((self.agg_dir / "summary.json").read_text())
        root = runs_root / profile
        if not root.is_dir():
            raise ConfigError(f"runs directory {root} does not exist")
        self.runs = {r.key(): r for r in discover(root) if r.ok}
        self.experiments = self.summary["experiments"]

    def table(self, name: str) -> pd.DataFrame:
        p = self.agg_dir / f"{name}.csv"
        try:
            return pd.read_csv(p)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {p}: {exc}".splitlines()[0]) from exc

    def exp(self, name: str) -> dict[str, Any]:
        if name not in self.experiments:
            raise Skip(f"experiment {name!r} is not run in this profile")
        return self.experiments[name]

    def runs_of(self, variant: str, env: str) -> list[Run]:
        return [r for (v, e, _), r in sorted(self.runs.items()) if (v, e) == (variant, env)]

    def series(self, variant: str, env: str, table: str, y: str, where=None) -> pd.DataFrame:
        """Long table (seed, step, y) of one CSV over the ok runs of (variant, env)."""
        frames = []
        for run in self.runs_of(variant, env):
            df = run.eval_curve() if table == "eval" else run.table(table)
            if df is None or df.empty:
                continue
            if where:
                df = df[df[where[0]] == where[1]]
            frames.append(df.assign(seed=run.seed))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _band(ax, df: pd.DataFrame, x: str, y: str, variant: str, label: str | None = None) -> None:
    """Mean +- std over seeds of y at each x."""
    g = df.groupby(x)[y]
    mean, std = g.mean(), g.std(ddof=0).fillna(0.0)
    n = df["seed"].nunique()
    c = colour(variant)
    ax.plot(mean.index, mean.values, color=c, label=f"{label or variant} (n={n})")
    ax.fill_between(mean.index, mean - std, mean + std, color=c, alpha=0.2, linewidth=0)


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _grid(n: int, w: float = 4.2, h: float = 3.2):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _per_env(
    d: Data,
    exp: str,
    variants: list[str],
    table: str,
    y: str,
    ylabel: str,
    where=None,
    log: bool = False,
    label_of: Callable[[str], str] | None = None,
):
    envs = d.exp(exp)["envs"]
    fig, axes = _grid(len(envs))
    plotted = 0
    for ax, env in zip(axes, envs, strict=True):
        for v in variants:
            df = d.series(v, env, table, y, where)
            if not df.empty:
                _band(ax, df, "step", y, v, label_of(v) if label_of else None)
                plotted += 1
        ax.set(title=env, xlabel="env steps", ylabel=ylabel)
        if log:
            ax.set_yscale("log")
        _legend(ax)
    if not plotted:
        plt.close(fig)
        raise Skip(f"no ok run of {', '.join(variants)} has {table}.csv data")
    return fig


def _variants(d: Data, exp: str, wanted: list[str] | None = None) -> list[str]:
    have = d.exp(exp)["variants"]
    out = [v for v in (wanted or have) if v in have]
    if not out:
        raise Skip(f"{exp} runs none of {', '.join(wanted or [])}")
    return out


def fig1_global_local(d: Data):
    """MBPO's one-step error on the whole buffer (global) vs the current policy (local)."""
    exp = "main"
    v = _variants(d, exp, ["mbpo"])[0]
    envs = d.exp(exp)["envs"]
    fig, axes = _grid(len(envs))
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
        _legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok MBPO run has model.csv")
    return fig


def fig2_curves(d: Data):
    exp = "main"
    return _per_env(d, exp, _variants(d, exp), "eval", "return", "return (mean ± std)")


def fig2_iqm(d: Data):
    exp = "main"
    d.exp(exp)
    df = d.table("curves_iqm")
    if df.empty or not (df["experiment"] == exp).any():
        raise Skip("no IQM curves for main (no ok runs)")
    df = df[(df["experiment"] == exp) & (df["scale"] == "return")]
    envs = list(dict.fromkeys(df["env"]))
    fig, axes = _grid(len(envs))
    for ax, env in zip(axes, envs, strict=True):
        for v, g in df[df["env"] == env].groupby("variant", sort=False):
            ax.plot(g["step"], g["iqm"], color=colour(v), label=f"{v} (n={g['n_seeds'].iloc[0]})")
            ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=colour(v), alpha=0.2)
        ax.set(title=env, xlabel="env steps", ylabel="return (IQM, 95% CI)")
        _legend(ax)
    return fig


def fig3abc_one_step(d: Data):
    exp = "main"
    return _per_env(
        d,
        exp,
        _variants(d, exp, ["pmac", "mbpo"]),
        "model",
        "error",
        "local one-step MSE",
        ("split", "local"),
        log=True,
    )


def fig3d_compounding(d: Data):
    """h-step error vs h, each run's mean over its evaluations, then mean +- std over seeds."""
    exp = "main"
    variants, envs = _variants(d, exp, ["pmac", "mbpo"]), d.exp(exp)["envs"]
    fig, axes = _grid(len(envs))
    found = False
    for ax, env in zip(axes, envs, strict=True):
        for v in variants:
            df = d.series(v, env, "compounding", "error")
            if df.empty:
                continue
            found = True
            _band(
                ax,
                df.groupby(["seed", "horizon"], as_index=False)["error"].mean(),
                "horizon",
                "error",
                v,
            )
        ax.set(title=env, xlabel="rollout step h", ylabel="compounding error (L2)")
        _legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok PMAC/MBPO run has compounding.csv")
    return fig


def fig3ef_visitation(d: Data):
    """Q-value quantiles of the current policy, the PMAC mixture and the uniform buffer at
    the last evaluation (pooled over seeds)."""
    exp = "main"
    variants, envs = _variants(d, exp, ["pmac", "mbpo"]), d.exp(exp)["envs"]
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
            _legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok PMAC/MBPO run has visitation.csv")
    return fig


def fig4_mechanism(d: Data):
    exp = "mechanism"
    return _per_env(d, exp, _variants(d, exp), "eval", "return", "return (mean ± std)")


def _alpha(run: Run) -> float | None:
    pm = run.config.get("hyperparameters", {}).get("pmac")
    return float(pm["alpha"]) if isinstance(pm, dict) and "alpha" in pm else None


def figc2_alpha(d: Data):
    """Final return and mean local one-step error vs alpha; MBPO (uniform) as a line."""
    exp = "alpha_sweep"
    variants, envs = _variants(d, exp), d.exp(exp)["envs"]
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
            _legend(ax)
    if not found:
        plt.close(fig)
        raise Skip("no ok run in the alpha sweep")
    return fig


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
    _legend(ax)
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
    _legend(ax)
    return fig


def cartpole_curves(d: Data):
    exp = "cartpole"
    return _per_env(d, exp, _variants(d, exp), "eval", "return", "return (mean ± std)")


def _horizon(run: Run) -> int | None:
    h = run.config.get("hyperparameters", {}).get("horizon")
    return int(h) if isinstance(h, int) else None


def cartpole_horizon(d: Data):
    """Final return vs fixed horizon H (Dyna-Q variants), adaptive and DQN as lines."""
    exp = "cartpole"
    variants, envs = _variants(d, exp), d.exp(exp)["envs"]
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
    _legend(ax)
    return fig


def cartpole_adaptive(d: Data):
    """Realised mean imagined rollout length over training (adaptive vs fixed H)."""
    exp = "cartpole"
    variants = [v for v in _variants(d, exp) if v.startswith("dyna_q")]
    return _per_env(d, exp, variants, "train", "rollout_length", "mean imagined rollout length")


def coadaptation_gap(d: Data):
    """Model return minus real return over the longest diagnosed horizon, over training."""
    exp = "main"
    variants, envs = _variants(d, exp, ["pmac", "mbpo"]), d.exp(exp)["envs"]
    fig, axes = _grid(len(envs))
    found = False
    for ax, env in zip(axes, envs, strict=True):
        for v in variants:
            df = d.series(v, env, "coadaptation", "model_return")
            if df.empty:
                continue
            found = True
            df = df[df["horizon"] == df["horizon"].max()]
            df = df.assign(gap=df["model_return"] - df["real_return"])
            _band(ax, df.groupby(["seed", "step"], as_index=False)["gap"].mean(), "step", "gap", v)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set(title=env, xlabel="env steps", ylabel="model - real return (longest h)")
        _legend(ax)
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
    variants, envs = _variants(d, exp), d.exp(exp)["envs"]
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
        _legend(axes[k])
    return fig


# name -> (experiment shown in, title, function)
FIGURES: dict[str, tuple[str, str, Callable[[Data], Any]]] = {
    "fig1_global_local_error": (
        "main",
        "Fig. 1a/b: MBPO global vs local one-step error",
        fig1_global_local,
    ),
    "fig2_learning_curves": ("main", "Fig. 2: learning curves (mean ± std)", fig2_curves),
    "fig2_learning_curves_iqm": ("main", "Fig. 2: learning curves (IQM, 95% CI)", fig2_iqm),
    "fig3abc_one_step_error": (
        "main",
        "Fig. 3a-c: local one-step error, PMAC vs MBPO",
        fig3abc_one_step,
    ),
    "fig3d_compounding_error": ("main", "Fig. 3d: compounding error vs horizon", fig3d_compounding),
    "fig3ef_visitation": (
        "main",
        "Fig. 3e/f: Q-value visitation (last evaluation)",
        fig3ef_visitation,
    ),
    "coadaptation_gap": ("main", "Co-adaptation gap over training", coadaptation_gap),
    "fig4_mechanism": ("mechanism", "Fig. 4: mechanism ablation", fig4_mechanism),
    "figC2_alpha_sweep": ("alpha_sweep", "Fig. C.2: alpha sweep", figc2_alpha),
    "horizon_study": (
        "horizon",
        "Fixed rollout horizons: return and compounding error",
        horizon_study,
    ),
    "cartpole_learning_curves": ("cartpole", "CartPole: learning curves", cartpole_curves),
    "cartpole_horizon_sweep": ("cartpole", "CartPole: horizon sweep", cartpole_horizon),
    "cartpole_adaptive_horizon": ("cartpole", "CartPole: adaptive horizon", cartpole_adaptive),
}
RLIABLE = {
    "rliable_intervals": ("final normalised score, 95% CIs", rliable_intervals),
    "rliable_profiles": ("performance profiles", rliable_profiles),
    "rliable_improvement": ("probability of improvement", rliable_improvement),
    "rliable_sample_efficiency": ("sample-efficiency curve", rliable_sample_efficiency),
}


def _save(fig, path: Path) -> None:
    """PNG and PDF, each written atomically (harness.job.rundir.atomic_write)."""
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        atomic_write(
            path.with_suffix(f".{ext}"),
            lambda fh, ext=ext, meta=meta: fig.savefig(
                fh, format=ext, dpi=110, bbox_inches="tight", metadata=meta
            ),
            binary=True,
        )
    plt.close(fig)


def figures(profile: str, runs_root: Path, agg_root: Path, out_root: Path) -> Path:
    """Draw every figure whose data exists; write figures/manifest.json."""
    d = Data(profile, runs_root, agg_root)
    out = out_root / profile / "figures"
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(n, exp, title, lambda f=f: f(d)) for n, (exp, title, f) in FIGURES.items()]
    for exp in d.experiments:
        for kind, (title, f) in RLIABLE.items():
            jobs.append((f"{kind}_{exp}", exp, f"{exp}: {title}", lambda f=f, e=exp: f(d, e)))
    manifest: dict[str, Any] = {}
    sns.set_theme(style="whitegrid", context="paper")
    for order, (name, exp, title, draw) in enumerate(jobs):
        entry: dict[str, Any] = {"experiment": exp, "title": title, "order": order}
        try:
            fig = draw()
            fig.tight_layout()
            fig.suptitle(f"{title}\n[{d.summary['label']}]", fontsize=9, y=1.0, va="bottom")
            _save(fig, out / name)
            entry["files"] = [f"{name}.png", f"{name}.pdf"]
        except Skip as why:
            entry["skipped"] = str(why)
            print(f"mbrl-bench figures: skipped {name}: {why}", file=sys.stderr)
        manifest[name] = entry
    atomic_write_json(out / "manifest.json", manifest)
    return out
