"""The critic of every MBPO-family run (MBPO, PMAC and their variants) over env steps: the
Q bias (critic.csv: mean min(Q1, Q2) at the evaluation episodes' state-actions minus their
realised discounted return) beside the entropy term a soft Q value carries
(alpha * H * gamma / (1 - gamma)), and the SAC temperature alpha (train.csv, per model
period). A critic that is accurate has a bias near its entropy term; a bias far above it is
overestimation."""

from __future__ import annotations

import matplotlib.pyplot as plt

from harness.analysis.figures.common import LOG_BAND, Data, Skip, add_legend, colour, plot_band
from harness.errors import ConfigError

MBPO_FAMILY = ("mbpo", "pmac", "pmac_model_only", "pmac_rollout_only")
COLUMNS = ("step", "states", "q_mean", "return_mean", "q_bias", "alpha", "entropy_bonus")


def _check_columns(d: Data, variant: str, env: str) -> None:
    """critic.csv must hold the contract's columns: a damaged file is bad input."""
    for run in d.runs_of(variant, env):
        df = run.table("critic")
        missing = [c for c in COLUMNS if df is not None and c not in df]
        if missing:
            raise ConfigError(f"{run.path / 'critic.csv'}: missing column(s) {', '.join(missing)}")


def critic_bias_temperature(d: Data, exp: str):
    """Per environment: Q bias (solid, mean +- std over seeds) and entropy term (dashed) on
    top, temperature below (log scale: mean and the seeds' range). Runs without critic.csv
    (written before it existed) are left out of the top row and named in the figure's
    notes."""
    spec = d.exp(exp)
    envs = spec["envs"]
    family = [
        v
        for v in spec["variants"]
        if any(r.algo in MBPO_FAMILY for e in envs for r in d.runs_of(v, e))
    ]
    if not family:
        raise Skip(
            f"{exp} has no ok MBPO-family run (MBPO, PMAC and variants); SAC, PETS, DQN and "
            "Dyna-Q write no critic.csv"
        )
    fig, axes = plt.subplots(
        2, len(envs), squeeze=False, sharex="col", figsize=(4.4 * len(envs), 5.6)
    )
    drawn = 0
    for j, env in enumerate(envs):
        bias_ax, temp_ax = axes[0][j], axes[1][j]
        with_critic = 0
        for v in family:
            runs = d.runs_of(v, env)
            lacking = [r.seed for r in runs if r.table("critic") is None]
            if lacking:
                seeds = ", ".join(map(str, lacking))
                d.note(f"{v} on {env}, seed(s) {seeds}: no critic.csv, no Q bias drawn")
            _check_columns(d, v, env)
            critic = d.series(v, env, "critic", "q_bias")
            if not critic.empty:
                drawn += 1
                with_critic += 1
                plot_band(bias_ax, critic, "step", "q_bias", v, f"{v} Q bias")
                g = critic.groupby("step")["entropy_bonus"].mean()
                bias_ax.plot(g.index, g.values, "--", color=colour(v), lw=0.9,
                             label=f"{v} entropy term")  # fmt: skip
            train = d.series(v, env, "train", "alpha")
            if not train.empty and "alpha" in train:
                drawn += 1
                plot_band(temp_ax, train.dropna(subset=["alpha"]), "step", "alpha", v, log=True)
            elif not critic.empty:
                plot_band(temp_ax, critic, "step", "alpha", v, log=True)
        if not with_critic:
            bias_ax.text(0.5, 0.5, "no run here has critic.csv", ha="center", va="center",
                         transform=bias_ax.transAxes, color="0.4")  # fmt: skip
        bias_ax.axhline(0, color="0.5", lw=0.8)
        bias_ax.set(title=env, xlabel="", ylabel="Q - discounted return\n(mean ± std)")
        temp_ax.set(xlabel="env steps", ylabel=f"temperature alpha\n({LOG_BAND})", yscale="log")
        add_legend(bias_ax)
        add_legend(temp_ax)
    if not drawn:
        plt.close(fig)
        raise Skip(
            f"no ok MBPO-family run of {exp} has critic.csv or a train.csv alpha column "
            "(runs written before the critic diagnostics)"
        )
    return fig
