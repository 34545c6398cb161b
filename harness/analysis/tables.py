"""The runs of one profile, indexed for the statistics: which runs the experiments expect
and their status (`Aggregation.runs_table`), the evaluation curves, and the
`runs x tasks (x steps)` matrices rliable takes (`Aggregation.matrix`, `curve_matrix`),
with every run left out and why. `harness.analysis.aggregate` turns them into the tables of
`results/aggregate/{profile}/`, `harness.analysis.claims` into the claims table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import stats
from harness.analysis.runs import Run, discover
from harness.analysis.scores import EnvScores, load_scores
from harness.errors import ConfigError
from harness.job.config import load_profile
from harness.job.experiments import Job, experiment_jobs, load_experiments

MISSING = "missing"
SPEEDUP_PAIR = ("pmac", "mbpo")  # steps-to-threshold: PMAC reaching MBPO's final IQM


@dataclass
class Matrix:
    """Per-run values of one variant over environments: values [runs, tasks] (or
    [runs, tasks, steps] with `steps`), the seeds used and what was left out."""

    values: np.ndarray
    seeds: list[int]
    envs: list[str]
    steps: np.ndarray | None = None
    excluded: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seeds)


class Aggregation:
    """The runs of one profile, indexed for the statistics."""

    def __init__(self, profile: str, runs_root: Path, reps: int | None = None) -> None:
        prof = load_profile(profile)
        self.profile, self.label = profile, prof["label"]
        self.smoke = profile == "smoke"
        self.reps = reps or int((prof.get("stats") or {}).get("bootstrap_reps", 0))
        if self.reps < 1:
            raise ConfigError(f"{profile}.yaml: stats.bootstrap_reps must be >= 1")
        self.jobs = experiment_jobs(profile)
        self.catalogue = load_experiments()
        self.scores = load_scores()
        root = runs_root / profile
        if not root.is_dir():
            raise ConfigError(f"runs directory {root} does not exist")
        self.runs: dict[tuple[str, str, int], Run] = {}
        for run in discover(root):
            if run.profile != profile:
                raise ConfigError(f"{run.path}: profile {run.profile!r}, expected {profile!r}")
            self.runs[run.key()] = run
        self._cache: dict[Any, Any] = {}

    # --- run tables -------------------------------------------------------------------
    def experiments_of(self, key: tuple[str, str, int]) -> list[str]:
        return [e for e, jobs in self.jobs.items() if any(_key(j) == key for j in jobs)]

    def expected(self) -> list[Job]:
        seen: dict[tuple[str, str, int], Job] = {}
        for jobs in self.jobs.values():
            for job in jobs:
                seen.setdefault(_key(job), job)
        return list(seen.values())

    def status(self, key: tuple[str, str, int]) -> str:
        run = self.runs.get(key)
        return MISSING if run is None else run.status

    def ok(self, key: tuple[str, str, int]) -> Run | None:
        run = self.runs.get(key)
        return run if run is not None and run.ok else None

    def runs_table(self) -> pd.DataFrame:
        keys = [_key(j) for j in self.expected()]
        keys += sorted(k for k in self.runs if k not in set(keys))
        rows = []
        for key in keys:
            run = self.runs.get(key)
            done, prov = (run.done or {}, run.provenance) if run else ({}, {})
            rows.append(
                {
                    "variant": key[0],
                    "algo": run.algo if run else _algo(self.catalogue, key[0]),
                    "env": key[1],
                    "seed": key[2],
                    "status": self.status(key),
                    "experiments": ";".join(self.experiments_of(key)) or "(not expected)",
                    "final_return": run.final_return() if run else math.nan,
                    "final_normalised": self.normalise(key[1], run.final_return())
                    if run
                    else math.nan,
                    "auc": float(done.get("auc", math.nan)),
                    "env_steps": done.get("env_steps", ""),
                    "local_error": run.mean_of("model", "error", ("split", "local"))
                    if run
                    else math.nan,
                    "compounding_error": run.mean_of("compounding", "error") if run else math.nan,
                    "wall_s": float(done.get("wall_s", math.nan)),
                    "git_commit": prov.get("git_commit", ""),
                    "git_dirty": prov.get("git_dirty", ""),
                    "path": str(run.path) if run else "",
                }
            )
        return pd.DataFrame(rows)

    def curves_table(self) -> pd.DataFrame:
        """Mean evaluation return per eval step of every run that has evaluations."""
        frames = []
        for key in sorted(self.runs):
            curve = self.runs[key].eval_curve()
            if curve.empty:
                continue
            frames.append(
                curve.assign(
                    variant=key[0],
                    env=key[1],
                    seed=key[2],
                    status=self.status(key),
                    normalised=self.normalise(key[1], curve["return"].to_numpy()),
                )[["variant", "env", "seed", "status", "step", "return", "normalised"]]
            )
        cols = ["variant", "env", "seed", "status", "step", "return", "normalised"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

    def normalise(self, env: str, returns: Any) -> Any:
        sc = self.scores.get(env, EnvScores(0.0, None))
        out = sc.normalise(np.asarray(returns, dtype=np.float64))
        return float(out) if np.ndim(out) == 0 else out

    # --- matrices for rliable ---------------------------------------------------------
    def envs_of(self, experiment: str) -> list[str]:
        return list(dict.fromkeys(j.env for j in self.jobs[experiment]))

    def seeds_of(self, experiment: str, variant: str, env: str) -> list[int]:
        return [j.seed for j in self.jobs[experiment] if (j.variant, j.env) == (variant, env)]

    def matrix(self, experiment: str, variant: str, envs: Sequence[str], value: str) -> Matrix:
        """[runs, tasks] of a per-run value ("final_return", "normalised", "-local_error",
        "-compounding_error": negated so that higher is better) over the seeds ok in every env."""
        seeds_by_env = {e: self.seeds_of(experiment, variant, e) for e in envs}
        all_seeds = sorted(set().union(*seeds_by_env.values())) if envs else []
        excluded = []
        used = []
        for seed in all_seeds:
            bad = [
                (e, self.status((variant, e, seed)))
                for e in envs
                if seed not in seeds_by_env[e] or self.ok((variant, e, seed)) is None
            ]
            if bad:
                for e in envs:
                    status = self.status((variant, e, seed))
                    reason = "; ".join(f"{be}: {bs}" for be, bs in bad)
                    excluded.append(_excl(experiment, variant, e, seed, value, status, reason))
            else:
                used.append(seed)
        vals = np.array(
            [[self._value(self.runs[(variant, e, s)], value) for e in envs] for s in used],
            dtype=np.float64,
        ).reshape(len(used), len(envs))
        return Matrix(vals, used, list(envs), excluded=excluded)

    def _value(self, run: Run, value: str) -> float:
        if value == "final_return":
            return run.final_return()
        if value == "normalised":
            return self.normalise(run.env, run.final_return())
        if value == "-local_error":
            return -run.mean_of("model", "error", ("split", "local"))
        if value == "-compounding_error":
            return -run.mean_of("compounding", "error")
        raise ValueError(f"unknown value {value!r}")

    def curve_matrix(self, experiment: str, variant: str, envs: Sequence[str], norm: bool):
        """[runs, tasks, steps] of eval returns (normalised if `norm`) on the eval steps
        shared by every included run."""
        m = self.matrix(experiment, variant, envs, "final_return")
        curves = {(s, e): self.runs[(variant, e, s)].eval_curve() for s in m.seeds for e in envs}
        grids = [set(c["step"].astype(int)) for c in curves.values()]
        steps = np.array(sorted(set.intersection(*grids)) if grids else [], dtype=np.int64)
        vals = np.empty((m.n, len(envs), len(steps)))
        for i, s in enumerate(m.seeds):
            for j, e in enumerate(envs):
                c = curves[(s, e)].set_index("step")["return"].loc[steps].to_numpy()
                vals[i, j] = self.normalise(e, c) if norm else c
        return Matrix(vals, m.seeds, list(envs), steps, m.excluded)

    def normalisable(self, envs: Sequence[str]) -> tuple[list[str], list[str]]:
        ok = [e for e in envs if self.scores.get(e, EnvScores(0.0, None)).reference is not None]
        return ok, [e for e in envs if e not in ok]

    # --- statistics (memoised: experiments share runs) ------------------------------
    def memo(self, key: Any, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def pairwise(self, experiment: str, x: str, y: str, value: str, envs: Sequence[str]):
        """P(x > y) over `envs` with its CI and the seed counts."""
        mx = self.matrix(experiment, x, envs, value)
        my = self.matrix(experiment, y, envs, value)
        est = None
        finite = np.isfinite(mx.values).all() and np.isfinite(my.values).all()
        if mx.n and my.n and finite:
            est = self.memo(
                ("poi", x, y, value, tuple(envs), tuple(mx.seeds), tuple(my.seeds)),
                lambda: stats.improvement(mx.values, my.values, self.reps),
            )
        return est, mx.n, my.n

    def speedup(self, experiment: str, env: str):
        fast, slow = SPEEDUP_PAIR
        mf = self.curve_matrix(experiment, fast, [env], norm=False)
        ms = self.curve_matrix(experiment, slow, [env], norm=False)
        steps = np.array(sorted(set(mf.steps) & set(ms.steps)), dtype=np.int64)
        if not (mf.n and ms.n and steps.size):
            return None, mf, ms, steps
        idx_f = np.searchsorted(mf.steps, steps)
        idx_s = np.searchsorted(ms.steps, steps)
        a, b = mf.values[..., idx_f], ms.values[..., idx_s]
        est = self.memo(
            ("speedup", env, tuple(mf.seeds), tuple(ms.seeds)),
            lambda: stats.speedup_interval(steps, a, b, self.reps),
        )
        return est, mf, ms, steps


def _key(job: Job) -> tuple[str, str, int]:
    return (job.variant, job.env, job.seed)


def _algo(catalogue: dict[str, Any], variant: str) -> str:
    return (catalogue["variants"].get(variant) or {}).get("algo", variant)


def _excl(experiment, variant, env, seed, value, status, reason) -> dict[str, Any]:
    return {
        "experiment": experiment,
        "variant": variant,
        "env": env,
        "seed": seed,
        "statistic": value,
        "status": status,
        "reason": f"run not ok ({reason}): seed left out in every env of the experiment",
    }
