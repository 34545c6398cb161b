"""Our learning curves beside the published ones, at matched env steps (`published.csv`).

A published curve is `results/reference/published/{variant}_{env}.csv` with columns
`step, return_mean, return_std` (its README cites the source and says how the steps were
matched to ours). For every (variant, env) that has both a published curve and runs here,
each of our evaluation steps inside the published curve's range gets our IQM with its 95%
stratified-bootstrap interval (the `curves_iqm` table), our mean episode length over the
same seeds, and the published mean and standard deviation linearly interpolated to that
step. The published std is over the paper's seeds, our interval is of the IQM: the table
shows both and draws no verdict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import ConfigError
from harness.job.config import REPO_ROOT

PUBLISHED_DIR = REPO_ROOT / "results" / "reference" / "published"
PUBLISHED_COLUMNS = ("step", "return_mean", "return_std")
COLUMNS = [
    "variant", "env", "step", "n_seeds", "iqm", "ci_low", "ci_high", "mean_length",
    "published_mean", "published_std", "source",
]  # fmt: skip


def published_curves(root: Path = PUBLISHED_DIR) -> dict[tuple[str, str], pd.DataFrame]:
    """{(variant, env): curve sorted by step} for every `{variant}_{env}.csv` under `root`."""
    curves = {}
    for path in sorted(root.glob("*_*.csv")):
        variant, _, env = path.stem.rpartition("_")
        df = _read(path)
        curves[(variant, env)] = df.sort_values("step", kind="stable").reset_index(drop=True)
    return curves


def _read(path: Path) -> pd.DataFrame:
    """A published curve, or one line naming what is wrong with the file."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}".splitlines()[0]) from exc
    missing = [c for c in PUBLISHED_COLUMNS if c not in df.columns]
    if missing or df.empty:
        raise ConfigError(f"{path}: needs rows with columns {', '.join(PUBLISHED_COLUMNS)}")
    values = df[list(PUBLISHED_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    if not np.isfinite(values.to_numpy()).all():
        raise ConfigError(f"{path}: a value of {', '.join(PUBLISHED_COLUMNS)} is not a number")
    return values


def published_table(
    curves_iqm: pd.DataFrame, curves: pd.DataFrame, root: Path = PUBLISHED_DIR
) -> pd.DataFrame:
    """One row per matched step of every (variant, env) with a published curve and runs."""
    rows = []
    if curves_iqm.empty:
        return pd.DataFrame(columns=COLUMNS)
    ours = curves_iqm[curves_iqm["scale"] == "return"]
    ok = curves[curves["status"] == "ok"]
    for (variant, env), pub in published_curves(root).items():
        mine = ours[(ours["variant"] == variant) & (ours["env"] == env)]
        if mine.empty:
            continue
        # The same runs enter every experiment that shares them: keep each step's first row.
        mine = mine.drop_duplicates(subset="step", keep="first").sort_values("step")
        lo, hi = pub["step"].iloc[0], pub["step"].iloc[-1]
        mine = mine[(mine["step"] >= lo) & (mine["step"] <= hi)]
        steps = mine["step"].to_numpy(dtype=float)
        mean = np.interp(steps, pub["step"], pub["return_mean"])
        std = np.interp(steps, pub["step"], pub["return_std"])
        runs = ok[(ok["variant"] == variant) & (ok["env"] == env)]
        # By label: an empty groupby's index is not numeric, and Series.get would then read
        # integer steps as positions.
        lengths = runs.groupby("step")["length"].mean().reindex(steps).to_numpy(dtype=float)
        for k, (_, r) in enumerate(mine.iterrows()):
            rows.append(
                {
                    "variant": variant,
                    "env": env,
                    "step": int(r["step"]),
                    "n_seeds": int(r["n_seeds"]),
                    "iqm": r["iqm"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    "mean_length": float(lengths[k]),
                    "published_mean": float(mean[k]),
                    "published_std": float(std[k]),
                    "source": f"results/reference/published/{variant}_{env}.csv",
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)
