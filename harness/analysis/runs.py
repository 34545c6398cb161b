"""Reading run directories back (docs/pipeline.md "The run directory"): the one loader the
aggregation, the figures, the report and the regression check share.

A run is any directory holding `config.json`. Its status is `ok` or `failed: <reason>`
from `done.json`, or `incomplete` when `done.json` is absent (killed, still running, or
resumable); nothing here drops a run silently - callers list what they exclude.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ConfigError

INCOMPLETE = "incomplete"


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


@dataclass(frozen=True)
class Run:
    """One run directory; files are read lazily and cached."""

    path: Path

    @cached_property
    def config(self) -> dict[str, Any]:
        return read_json(self.path / "config.json")

    @cached_property
    def done(self) -> dict[str, Any] | None:
        p = self.path / "done.json"
        return read_json(p) if p.exists() else None

    @cached_property
    def provenance(self) -> dict[str, Any]:
        """provenance.json, or {} when the run has none."""
        p = self.path / "provenance.json"
        return read_json(p) if p.exists() else {}

    @property
    def algo(self) -> str:
        return self.config["algo"]

    @property
    def env(self) -> str:
        return self.config["env"]

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def profile(self) -> str:
        return self.config["profile"]

    @property
    def variant(self) -> str:
        return self.config.get("variant", self.algo)

    @property
    def status(self) -> str:
        return INCOMPLETE if self.done is None else str(self.done["status"])

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def table(self, name: str) -> pd.DataFrame | None:
        """`name`.csv of the run (e.g. "eval", "model"), or None when the run has none."""
        p = self.path / f"{name}.csv"
        if not p.exists():
            return None
        try:
            return pd.read_csv(p)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {p}: {exc}".splitlines()[0]) from exc

    def csv_files(self) -> list[Path]:
        """Every CSV file of the run (eval, train, diagnostics, ...), sorted by name."""
        return sorted(self.path.glob("*.csv"))

    def eval_curve(self) -> pd.DataFrame:
        """Mean evaluation return and episode length per eval step (`step`, `return`,
        `length`; length nan when eval.csv has none); empty if no evaluation."""
        ev = self.table("eval")
        if ev is None or ev.empty:
            return pd.DataFrame({"step": pd.Series(dtype="int64"), "return": [], "length": []})
        if "length" not in ev:
            ev = ev.assign(length=float("nan"))
        return ev.groupby("step", as_index=False)[["return", "length"]].mean()

    def model_errors(self, target: str = "state") -> pd.DataFrame | None:
        """model.csv's rows of one prediction target (`state` or `reward`); a model.csv
        without a `target` column holds state errors only. None without model.csv."""
        df = self.table("model")
        if df is None:
            return None
        if "target" not in df:
            return df if target == "state" else df.iloc[0:0]
        return df[df["target"] == target].drop(columns="target")

    def final_return(self) -> float:
        """done.json's final return (mean return of the last evaluation); nan if unfinished."""
        return float(self.done["final_return"]) if self.done else float("nan")

    def mean_of(self, name: str, column: str, where: tuple[str, str] | None = None) -> float:
        """Mean of `column` in `name`.csv over all its rows (those with `where` = (column,
        value); model.csv: its state-error rows); nan when the run has no such table (e.g.
        model-free runs)."""
        df = self.model_errors() if name == "model" else self.table(name)
        if df is None or df.empty:
            return float("nan")
        if where is not None:
            df = df[df[where[0]] == where[1]]
        return float(df[column].mean()) if not df.empty else float("nan")

    def key(self) -> tuple[str, str, int]:
        """(variant, env, seed): what identifies a run within a profile."""
        return (self.variant, self.env, self.seed)


def discover(root: Path) -> list[Run]:
    """Every run directory under `root` (or `root` itself), sorted by path."""
    if not root.is_dir():
        raise ConfigError(f"runs directory {root} does not exist")
    return [Run(p.parent) for p in sorted(root.rglob("config.json"))]
