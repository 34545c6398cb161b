"""Reading run directories back (docs/pipeline.md "The run directory"): the one loader the
aggregation, the figures, the report and the regression check share.

A run is a directory named `seed<N>` (a copy such as `seed0.bak` is not). Its status is
`ok` or `failed: <reason>` from `done.json`, `incomplete` when `done.json` is absent
(killed, still running, or resumable), or `damaged: <reason>` when a file of a finished
run cannot be trusted: config.json or done.json unreadable, a CSV missing, unreadable,
truncated, empty, with a non-numeric or non-finite value where numbers are analysed, or
eval.csv disagreeing with done.json (last evaluation step, final return). Validation is
here, where the files are read, so every reader (aggregate, figures, report, baseline,
check) sees the same status; nothing here drops a run silently - callers list what they
exclude.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ConfigError, read_mapping

INCOMPLETE = "incomplete"
DAMAGED = "damaged"
RUN_DIR = re.compile(r"seed(\d+)")

# Columns whose values the analysis uses, per CSV: they must be present, numeric and finite.
# Other columns (train.csv's losses may be nan early in a run) and other files (critic.csv
# and its columns) are only checked for structure; model.csv may carry a `target` column.
NUMERIC = {
    "eval": ("step", "episode", "return", "length"),
    "model": ("step", "error"),
    "compounding": ("step", "horizon", "error"),
    "coadaptation": ("step", "horizon", "model_return", "real_return"),
    "visitation": ("step", "q_quantile", "q_value"),
    "critic": ("step",),
    "train": ("step",),
}


@dataclass(frozen=True)
class Run:
    """One run directory; files are read lazily and cached."""

    path: Path

    @cached_property
    def config(self) -> dict[str, Any]:
        """config.json; when it is missing or unreadable, what the path says
        (profile/variant/env/seedN) and the run is damaged."""
        try:
            data = read_mapping(self.path / "config.json")
            if all(k in data for k in ("algo", "env", "seed", "profile")):
                int(data["seed"])
                return data
        except (ConfigError, TypeError, ValueError):
            pass
        seed = RUN_DIR.fullmatch(self.path.name)
        return {
            "algo": self.path.parent.parent.name,
            "variant": self.path.parent.parent.name,
            "env": self.path.parent.name,
            "seed": int(seed[1]) if seed else -1,
            "profile": self.path.parent.parent.parent.name,
            "hyperparameters": {},
        }

    @cached_property
    def done(self) -> dict[str, Any] | None:
        """done.json, None when absent; {} when unreadable (the run is damaged)."""
        p = self.path / "done.json"
        if not p.exists():
            return None
        try:
            data = read_mapping(p)
        except ConfigError:
            return {}
        return data if isinstance(data.get("status"), str) else {}

    @cached_property
    def provenance(self) -> dict[str, Any]:
        """provenance.json, or {} when the run has none (or it is unreadable)."""
        p = self.path / "provenance.json"
        try:
            return read_mapping(p) if p.exists() else {}
        except ConfigError:
            return {}

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
        if self.done is None:
            return INCOMPLETE
        damage = self.damage
        if damage is not None:
            return f"{DAMAGED}: {damage}"
        return str(self.done["status"])

    @cached_property
    def damage(self) -> str | None:
        """Why the finished run's files cannot be trusted, or None (see the module doc).
        Failed runs are only checked for readable config.json and done.json."""
        try:
            read_mapping(self.path / "config.json")
        except ConfigError as exc:
            return "config.json missing" if not (self.path / "config.json").exists() else (
                f"config.json unreadable ({str(exc).split(': ', 1)[-1]})"
            )  # fmt: skip
        if not self.done:
            return "done.json unreadable or without a status"
        if self.done["status"] != "ok":
            return None
        if not (self.path / "eval.csv").exists():
            return "eval.csv missing"
        for p in self.csv_files():
            problem = _csv_problem(p, NUMERIC.get(p.stem, ()))
            if problem is not None:
                return f"{p.name}: {problem}"
        return self._eval_matches_done()

    def _eval_matches_done(self) -> str | None:
        ev = pd.read_csv(self.path / "eval.csv")
        last = int(ev["step"].max())
        hp = self.config.get("hyperparameters") or {}
        steps, every = self.done.get("env_steps"), hp.get("eval_every")
        if isinstance(steps, int) and isinstance(every, int) and every > 0:
            expected = steps // every * every
            if last != expected:
                return f"eval.csv ends at step {last}, done.json's run evaluates at {expected}"
        final = self.done.get("final_return")
        mean = float(ev.loc[ev["step"] == last, "return"].mean())
        if isinstance(final, int | float) and math.isfinite(final):
            if not math.isclose(mean, final, rel_tol=1e-9, abs_tol=1e-9):
                return f"eval.csv's last mean return {mean!r} != done.json's final_return {final!r}"
        return None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def table(self, name: str) -> pd.DataFrame | None:
        """`name`.csv of the run (e.g. "eval", "model"), or None when the run has none - or
        when the file cannot be trusted: the run is damaged, or (unfinished runs, which are
        still being written and not validated as a whole) this file fails the checks."""
        p = self.path / f"{name}.csv"
        if not p.exists() or self.status.startswith(DAMAGED):
            return None
        if self.done is None and _csv_problem(p, NUMERIC.get(name, ())) is not None:
            return None
        try:
            return pd.read_csv(p)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
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


def _csv_problem(path: Path, numeric: tuple[str, ...]) -> str | None:
    """What is wrong with one CSV of a run, or None: it must end with a newline (the
    writer's, rundir.CsvTable), have a header and at least one row, every row as wide as
    the header, and finite numbers in the `numeric` columns it has (eval.csv: all of them)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return f"unreadable ({exc})"
    if not text.strip():
        return "empty"
    if not text.endswith("\n"):
        return "truncated (no final newline)"
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    if not body:
        return "no rows, only a header"
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            return f"line {i} has {len(row)} fields, the header {len(header)} (truncated?)"
    required = numeric if path.stem == "eval" else ()
    missing = [c for c in required if c not in header]
    if missing:
        return f"columns {missing} missing"
    for col in (c for c in numeric if c in header):
        j = header.index(col)
        for i, row in enumerate(body, start=2):
            try:
                value = float(row[j])
            except ValueError:
                return f"line {i}: {col} {row[j]!r} is not a number"
            if not math.isfinite(value):
                return f"line {i}: {col} is {row[j]}"
    return None


def discover(root: Path) -> list[Run]:
    """Every run directory under `root` (or `root` itself when it holds config.json),
    sorted by path: directories named seed<N> that hold any file; others (a copy such as
    seed0.bak, a directory Snakemake made for a job that never started) are not runs."""
    if not root.is_dir():
        raise ConfigError(f"runs directory {root} does not exist")
    if (root / "config.json").exists():
        return [Run(root)]
    return [
        Run(p)
        for p in sorted(root.rglob("seed*"))
        if RUN_DIR.fullmatch(p.name) and p.is_dir() and any(f.is_file() for f in p.iterdir())
    ]
