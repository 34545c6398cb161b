"""What every figure shares: the colours (one per variant, in the order of
config/experiments.yaml), `Skip`, the loaded data of one profile (`Data`: ok runs and the
aggregation's tables), the mean +- std band, the per-environment grid and the atomic
PNG + PDF writer."""

from __future__ import annotations

import json
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
from harness.job.rundir import atomic_write  # noqa: E402

# 27 colours, then tab10's last five again: the variants after the first 27 (the weighting
# schemes, drawn beside PMAC and MBPO) would otherwise wrap onto PMAC's and MBPO's colours.
_PALETTE = [
    *sns.color_palette("tab10"),
    *sns.color_palette("Dark2"),
    *sns.color_palette("Set1"),
    *sns.color_palette("tab10")[5:],
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
        only = self.summary.get("envs")  # `aggregate --envs`: other environments out of scope
        self.runs = {r.key(): r for r in discover(root) if r.ok and (not only or r.env in only)}
        self.experiments = self.summary["experiments"]
        self.notes: list[str] = []  # what the figure being drawn leaves out, and why

    def note(self, text: str) -> None:
        """Record, for the figure being drawn, something it leaves out (in the manifest)."""
        if text not in self.notes:
            self.notes.append(text)

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
        """Long table (seed, step, y) of one CSV over the ok runs of (variant, env); "model"
        is model.csv's state errors, "model:reward" its reward errors."""
        frames = []
        for run in self.runs_of(variant, env):
            if table == "eval":
                df = run.eval_curve()
            elif table.startswith("model"):
                df = run.model_errors(table.partition(":")[2] or "state")
            else:
                df = run.table(table)
            if df is None or df.empty:
                continue
            if where:
                df = df[df[where[0]] == where[1]]
            frames.append(df.assign(seed=run.seed))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# The band of a log-scaled axis: the seeds' range, since mean - std falls to zero or below
# wherever the seeds' spread exceeds their mean and the band would run off the axis.
LOG_BAND = "mean, band: seeds' range"


def plot_band(
    ax, df: pd.DataFrame, x: str, y: str, variant: str, label: str | None = None,
    log: bool = False, style: str = "-",
) -> None:  # fmt: skip
    """The mean over seeds of y at each x, in a band of +- std, or of the seeds' min to max
    for a log-scaled axis (`log`, LOG_BAND)."""
    g = df.groupby(x)[y]
    mean = g.mean()
    if log:
        low, high = g.min(), g.max()
    else:
        std = g.std(ddof=0).fillna(0.0)
        low, high = mean - std, mean + std
    n = df["seed"].nunique()
    c = colour(variant)
    ax.plot(mean.index, mean.values, style, color=c, label=f"{label or variant} (n={n})")
    ax.fill_between(mean.index, low, high, color=c, alpha=0.2, linewidth=0)


def add_legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def subplot_grid(n: int, w: float = 4.2, h: float = 3.2):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def env_panels(envs: list[str], panel: Callable[[Any, str], bool], skip: str):
    """The grid of one panel per environment: `panel(ax, env)` draws an environment's data,
    titles and labels and says whether it drew any; a legend follows. No data in any panel
    closes the figure and raises Skip(skip)."""
    fig, axes = subplot_grid(len(envs))
    found = False
    for ax, env in zip(axes, envs, strict=True):
        found = panel(ax, env) or found
        add_legend(ax)
    if not found:
        plt.close(fig)
        raise Skip(skip)
    return fig


def per_env_figure(
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
    def panel(ax, env: str) -> bool:
        plotted = False
        for v in variants:
            df = d.series(v, env, table, y, where)
            if not df.empty:
                plot_band(ax, df, "step", y, v, label_of(v) if label_of else None, log=log)
                plotted = True
        ax.set(title=env, xlabel="env steps", ylabel=f"{ylabel}\n({LOG_BAND})" if log else ylabel)
        if log:
            ax.set_yscale("log")
        return plotted

    skip = f"no ok run of {', '.join(variants)} has {table}.csv data"
    return env_panels(d.exp(exp)["envs"], panel, skip)


def curves_with_lengths(d: Data, exp: str, variants: list[str], ylabel: str, hlines=(), spans=()):
    """Learning curves (mean +- std over seeds) with the mean episode length under each:
    per environment a return panel and, below it, a length panel (a return of ~1,000 over
    1,000 steps can be standing still). On the returns: `hlines` (y, label, style) and
    shaded `spans` (low, high)."""
    envs = d.exp(exp)["envs"]
    cols = min(len(envs), 3)
    blocks = -(-len(envs) // cols)
    fig, axes = plt.subplots(
        2 * blocks, cols, figsize=(4.2 * cols, 5.0 * blocks), squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.6] * blocks},
    )  # fmt: skip
    for ax in axes.flat:
        ax.set_visible(False)
    plotted = 0
    for k, env in enumerate(envs):
        top, bottom = axes[2 * (k // cols)][k % cols], axes[2 * (k // cols) + 1][k % cols]
        top.set_visible(True)
        bottom.set_visible(True)
        for v in variants:
            df = d.series(v, env, "eval", "return")
            if df.empty:
                continue
            plotted += 1
            plot_band(top, df, "step", "return", v)
            lengths = df.dropna(subset=["length"])
            if not lengths.empty:
                plot_band(bottom, lengths, "step", "length", v)
        for y, label, style in hlines:
            top.axhline(y, color="0.3", ls=style, lw=0.9, label=label)
        for low, high in spans:
            top.axhspan(low, high, color="0.5", alpha=0.08, lw=0)
        top.set(title=env, xlabel="", ylabel=ylabel)
        bottom.set(xlabel="env steps", ylabel="episode length\n(mean ± std)")
        add_legend(top)
    if not plotted:
        plt.close(fig)
        raise Skip(f"no ok run of {', '.join(variants)} has eval.csv data")
    return fig


def pick_variants(d: Data, exp: str, wanted: list[str] | None = None) -> list[str]:
    have = d.exp(exp)["variants"]
    out = [v for v in (wanted or have) if v in have]
    if not out:
        raise Skip(f"{exp} runs none of {', '.join(wanted or [])}")
    return out


def save_figure(fig, path: Path) -> None:
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
