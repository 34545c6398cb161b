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

from algorithms.parts.loop import summarise
from harness.analysis import stats
from harness.analysis.runs import Run, discover
from harness.analysis.scores import EnvScores, load_scores
from harness.errors import ConfigError
from harness.job import provenance
from harness.job.config import load_profile
from harness.job.experiments import Job, experiment_jobs, load_experiments

MISSING = "missing"
SPEEDUP_PAIR = ("pmac", "mbpo")  # steps-to-threshold: PMAC reaching MBPO's final IQM


@dataclass(frozen=True)
class Comparison:
    """P(x > y) of one pair of variants (`est`, None when not computable), the seeds of each
    side, and how their budgets compare: `budget` is "" when both sides ran the same step
    budget, evaluation interval and evaluation episodes in every environment, else what
    differs; `at_step` the evaluation step compared per environment when the step budgets
    differ (the last one both sides evaluated), {} when the final evaluations are compared."""

    est: stats.Estimate | None
    n_x: int
    n_y: int
    budget: str = ""
    at_step: dict[str, int] = field(default_factory=dict)


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

    def __init__(
        self,
        profile: str,
        runs_root: Path,
        reps: int | None = None,
        envs: Sequence[str] | None = None,
    ) -> None:
        prof = load_profile(profile)
        self.profile, self.label = profile, prof["label"]
        self.smoke = profile == "smoke"
        self.reps = reps or int((prof.get("stats") or {}).get("bootstrap_reps", 0))
        if self.reps < 1:
            raise ConfigError(f"{profile}.yaml: stats.bootstrap_reps must be >= 1")
        self.jobs = experiment_jobs(profile)
        self.envs = None if envs is None else list(envs)
        if self.envs is not None:
            self.jobs = _restricted(self.jobs, self.envs, profile)
        self.catalogue = load_experiments()
        self.scores = load_scores()
        root = runs_root / profile
        if not root.is_dir():
            raise ConfigError(f"runs directory {root} does not exist")
        self.runs: dict[tuple[str, str, int], Run] = {}
        for run in discover(root):
            if run.profile != profile:
                raise ConfigError(f"{run.path}: profile {run.profile!r}, expected {profile!r}")
            if self.envs is None or run.env in self.envs:
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
                    "final_length": _final_length(run) if run else math.nan,
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
                    "git_commit": provenance.joined(prov, "git_commit"),
                    "git_dirty": provenance.dirty(prov) if prov else "",
                    "path": str(run.path) if run else "",
                }
            )
        return pd.DataFrame(rows)

    def curves_table(self) -> pd.DataFrame:
        """Mean evaluation return and episode length per eval step of every run that has
        evaluations."""
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
                )[CURVE_COLUMNS]
            )
        cols = CURVE_COLUMNS
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

    def matrix(
        self,
        experiment: str,
        variant: str,
        envs: Sequence[str],
        value: str,
        at_step: dict[str, int] | None = None,
    ) -> Matrix:
        """[runs, tasks] of a per-run value ("final_return", "normalised", "auc": the area
        under the learning curve, "-local_error", "-compounding_error": negated so that
        higher is better) over the seeds ok in every env; with `at_step` (env -> eval
        step), the return at that evaluation instead of the final one, the area up to it,
        and the errors' means over the evaluations up to it."""
        seeds_by_env = {e: self.seeds_of(experiment, variant, e) for e in envs}
        steps = at_step or {}
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
            [
                [self._value(self.runs[(variant, e, s)], value, steps.get(e)) for e in envs]
                for s in used
            ],
            dtype=np.float64,
        ).reshape(len(used), len(envs))
        return Matrix(vals, used, list(envs), excluded=excluded)

    def _value(self, run: Run, value: str, step: int | None = None) -> float:
        if value in ("final_return", "normalised"):
            ret = run.final_return() if step is None else _return_at(run, step)
            return ret if value == "final_return" else self.normalise(run.env, ret)
        if value == "auc":
            return _auc_until(run, step)
        if value == "-local_error":
            return -_mean_until(run.model_errors(), step, ("split", "local"))
        if value == "-compounding_error":
            return -_mean_until(run.table("compounding"), step)
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

    def budget(self, variant: str, env: str) -> tuple[Any, Any, Any] | None:
        """(total_steps, eval_every, eval_episodes) of the runs of (variant, env), from
        their config.json; None when no such run exists."""
        for (v, e, _), run in sorted(self.runs.items()):
            if (v, e) == (variant, env):
                hp = run.config.get("hyperparameters", {})
                return (hp.get("total_steps"), hp.get("eval_every"), hp.get("eval_episodes"))
        return None

    def _ok_runs(self, experiment: str, variant: str, env: str) -> list[Run]:
        keys = [(variant, env, s) for s in self.seeds_of(experiment, variant, env)]
        return [r for r in map(self.ok, keys) if r is not None]

    def common_budget(self, experiment: str, x: str, y: str, envs: Sequence[str]):
        """(what differs between the budgets of x and y, "" if nothing; env -> the last
        evaluation step both sides' ok runs share, for the envs whose step budgets differ)."""
        notes, at_step = [], {}
        for env in envs:
            bx, by = self.budget(x, env), self.budget(y, env)
            if bx is None or by is None or bx == by:
                continue
            desc = [
                f"{name} {_num(a)} vs {_num(b)}"
                for name, a, b in zip(("steps", "eval every", "eval episodes"), bx, by, strict=True)
                if a != b
            ]
            note = f"{env}: {', '.join(desc)}"
            if bx[0] != by[0]:
                grids = [
                    set(r.eval_curve()["step"].astype(int))
                    for v in (x, y)
                    for r in self._ok_runs(experiment, v, env)
                ]
                shared = set.intersection(*grids) if grids else set()
                if shared:
                    at_step[env] = max(shared)
                    note += f"; compared at step {at_step[env]:,}, the last both evaluated"
                else:
                    note += "; no evaluation step in common"
            notes.append(note)
        return "; ".join(notes), at_step

    def pairwise(
        self, experiment: str, x: str, y: str, value: str, envs: Sequence[str]
    ) -> Comparison:
        """P(x > y) over `envs` with its CI and the seed counts, at the common step range
        when the two sides' step budgets differ (`common_budget`)."""
        budget, at_step = self.common_budget(experiment, x, y, envs)
        mx = self.matrix(experiment, x, envs, value, at_step)
        my = self.matrix(experiment, y, envs, value, at_step)
        est = None
        finite = np.isfinite(mx.values).all() and np.isfinite(my.values).all()
        if mx.n and my.n and finite:
            key = ("poi", x, y, value, tuple(envs), tuple(mx.seeds), tuple(my.seeds))
            est = self.memo(
                (*key, tuple(sorted(at_step.items()))),
                lambda: stats.improvement(mx.values, my.values, self.reps),
            )
        return Comparison(est, mx.n, my.n, budget, at_step)

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


def _restricted(jobs: dict[str, list[Job]], envs: list[str], profile: str) -> dict[str, list[Job]]:
    """The experiments' jobs on `envs` only, experiments with none dropped: a claim over an
    experiment's environments is then judged on these (a partial set such as the Hopper
    reference runs), instead of being not computable for want of the others."""
    known = {j.env for js in jobs.values() for j in js}
    unknown = [e for e in envs if e not in known]
    if unknown or not envs:
        raise ConfigError(
            f"--envs {','.join(envs)}: {', '.join(unknown) or 'empty'} is not an environment of "
            f"the {profile} profile's experiments ({', '.join(sorted(known))})"
        )
    kept = {e: [j for j in js if j.env in envs] for e, js in jobs.items()}
    return {e: js for e, js in kept.items() if js}


CURVE_COLUMNS = ["variant", "env", "seed", "status", "step", "return", "length", "normalised"]


def _num(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else str(x)


def _final_length(run: Run) -> float:
    """Mean episode length of the run's last evaluation (nan without evaluations)."""
    curve = run.eval_curve()
    return float(curve["length"].iloc[-1]) if not curve.empty else math.nan


def _return_at(run: Run, step: int) -> float:
    """Mean evaluation return at `step` (nan when the run did not evaluate there)."""
    curve = run.eval_curve().set_index("step")["return"]
    return float(curve.loc[step]) if step in curve.index else math.nan


def _auc_until(run: Run, step: int | None) -> float:
    """The run's area under the learning curve (done.json's `auc`: the trapezoid over the
    evaluation steps divided by their span), over the evaluations up to `step` if given."""
    curve = run.eval_curve()
    if step is not None:
        curve = curve[curve["step"] <= step]
    return summarise(curve["step"].tolist(), curve["return"].tolist())["auc"]


def _mean_until(df: pd.DataFrame | None, step: int | None, where=None) -> float:
    """Mean `error` of a diagnostics table (rows with `where`), up to `step` if given."""
    if df is None or df.empty:
        return math.nan
    if where is not None:
        df = df[df[where[0]] == where[1]]
    if step is not None:
        df = df[df["step"] <= step]
    return float(df["error"].mean()) if not df.empty else math.nan


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
