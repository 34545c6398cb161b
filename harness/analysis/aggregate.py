"""`mbrl-bench aggregate`: run directories -> tidy tables and rliable statistics under
`results/aggregate/{profile}/` (docs/statistics.md).

Which runs should exist comes from `harness.job.experiments.experiment_jobs(profile)`;
every expected run is listed with its status (ok / failed: reason / incomplete / missing)
and only `ok` runs enter the statistics. rliable needs a full runs x tasks matrix, so a
variant's statistics over several environments use the seeds that are `ok` in all of them;
every run or environment left out of a statistic is listed in `excluded.csv` with the
reason. One function per table below; files are rewritten atomically and are
byte-identical on a rerun.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import stats
from harness.analysis.claims import COMBINED, PAIRWISE, claims_table
from harness.analysis.published import published_table
from harness.analysis.tables import SPEEDUP_PAIR, Aggregation
from harness.job.rundir import atomic_write_json, atomic_write_text

PIVOT = "pmac"  # the variant compared with every other one (probability of improvement)
EXCLUDED_COLUMNS = ["experiment", "variant", "env", "seed", "statistic", "status", "reason"]


def csv_text(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def _est_row(est: stats.Estimate | None) -> dict[str, float]:
    if est is None:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    return {"estimate": est.value, "ci_low": est.low, "ci_high": est.high}


def _variants(agg: Aggregation, exp: str) -> list[str]:
    return list(dict.fromkeys(j.variant for j in agg.jobs[exp]))


def intervals(agg: Aggregation) -> pd.DataFrame:
    """IQM, median, mean and optimality gap of the normalised final returns, with CIs."""
    rows = []
    for exp in agg.jobs:
        norm_envs, _ = agg.normalisable(agg.envs_of(exp))
        for v in _variants(agg, exp):
            m = agg.matrix(exp, v, norm_envs, "normalised")
            if not (m.n and norm_envs):
                continue
            est = agg.memo(
                ("agg", v, tuple(norm_envs), tuple(m.seeds)),
                lambda m=m: stats.aggregates(m.values, agg.reps),
            )
            for metric, e in est.items():
                rows.append(
                    {
                        "experiment": exp,
                        "variant": v,
                        "metric": metric,
                        **_est_row(e),
                        "n_seeds": m.n,
                        "envs": " ".join(norm_envs),
                    }
                )
    return pd.DataFrame(rows)


def curves_iqm(agg: Aggregation) -> pd.DataFrame:
    """Sample-efficiency curves: IQM per eval step with CIs, per env (raw returns) and over
    the normalisable envs (normalised)."""
    rows = []
    for exp in agg.jobs:
        envs = agg.envs_of(exp)
        norm_envs, _ = agg.normalisable(envs)
        groups = [(e, [e], False) for e in envs]
        if norm_envs:
            groups.append(("all (normalised)", norm_envs, True))
        for v in _variants(agg, exp):
            for label, group, norm in groups:
                cm = agg.curve_matrix(exp, v, group, norm)
                if not (cm.n and cm.steps.size):
                    continue
                point, ci = agg.memo(
                    ("curve", v, tuple(group), norm, tuple(cm.seeds)),
                    lambda cm=cm: stats.iqm_curve(cm.values, agg.reps),
                )
                for k, step in enumerate(cm.steps):
                    rows.append(
                        {
                            "experiment": exp,
                            "variant": v,
                            "env": label,
                            "scale": "normalised" if norm else "return",
                            "step": int(step),
                            "iqm": point[k],
                            "ci_low": ci[0, k],
                            "ci_high": ci[1, k],
                            "n_seeds": cm.n,
                        }
                    )
    return pd.DataFrame(rows)


def profile_taus(scores: np.ndarray, n: int = 41) -> np.ndarray:
    """The performance profiles' grid: the range of the scores, padded by 5% of it on each
    side (0.05 when all scores are equal), so a profile of scores below 0.12 is not drawn
    over 0-1."""
    lo, hi = float(scores.min()), float(scores.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.05
    return np.round(np.linspace(lo - pad, hi + pad, n), 6)


def profiles(agg: Aggregation) -> pd.DataFrame:
    """Performance profiles of the normalised final returns on one grid per experiment."""
    rows = []
    for exp in agg.jobs:
        norm_envs, _ = agg.normalisable(agg.envs_of(exp))
        finals = {v: agg.matrix(exp, v, norm_envs, "normalised") for v in _variants(agg, exp)}
        pooled = [m.values for m in finals.values() if m.n]
        if not (pooled and norm_envs):
            continue
        taus = profile_taus(np.concatenate([p.ravel() for p in pooled]))
        for v, m in finals.items():
            if not m.n:
                continue
            prof, ci = agg.memo(
                ("profile", v, tuple(norm_envs), tuple(m.seeds), tuple(taus)),
                lambda m=m, taus=taus: stats.performance_profile(m.values, taus, agg.reps),
            )
            for k, tau in enumerate(taus):
                rows.append(
                    {
                        "experiment": exp,
                        "variant": v,
                        "tau": tau,
                        "fraction": prof[k],
                        "ci_low": ci[0, k],
                        "ci_high": ci[1, k],
                        "n_seeds": m.n,
                    }
                )
    return pd.DataFrame(rows)


def improvement_pairs(agg: Aggregation, exp: str) -> list[tuple[str, str, str]]:
    """(x, y, value) compared by probability of improvement in one experiment: PIVOT's final
    return against every other variant, then every comparison of the experiment's claims
    (claims.PAIRWISE: the model errors, the mechanism ablations vs MBPO, Dyna-Q vs DQN;
    claims.COMBINED: the weighting schemes' areas under the curve and final returns)."""
    variants = _variants(agg, exp)
    pairs = [(PIVOT, v, "final_return") for v in variants if PIVOT in variants and v != PIVOT]
    claimed = [(x, y, value) for _, _, e, x, y, value, _, _ in PAIRWISE if e == exp]
    claimed += [c for _, _, e, comparisons, _, _ in COMBINED if e == exp for c in comparisons]
    for x, y, value in claimed:
        if {x, y} <= set(variants) and (x, y, value) not in pairs:
            pairs.append((x, y, value))
    return pairs


def improvement(agg: Aggregation) -> pd.DataFrame:
    """Probability of improvement of each pair of `improvement_pairs`, with what differs
    between the two sides' budgets (compared at their common step range)."""
    rows = []
    for exp in agg.jobs:
        envs = agg.envs_of(exp)
        for x, y, value in improvement_pairs(agg, exp):
            c = agg.pairwise(exp, x, y, value, envs)
            rows.append(
                {
                    "experiment": exp,
                    "x": x,
                    "y": y,
                    "statistic": value,
                    **_est_row(c.est),
                    "n_x": c.n_x,
                    "n_y": c.n_y,
                    "envs": " ".join(envs),
                    "budget": c.budget or "same",
                }
            )
    return pd.DataFrame(rows)


def steps_to_threshold(agg: Aggregation) -> pd.DataFrame:
    """Steps-to-threshold ratio of SPEEDUP_PAIR per environment."""
    rows = []
    for exp in agg.jobs:
        if not set(SPEEDUP_PAIR) <= set(_variants(agg, exp)):
            continue
        for env in agg.envs_of(exp):
            est, mf, ms, steps = agg.speedup(exp, env)
            rows.append(
                {
                    "experiment": exp,
                    "env": env,
                    "fast": SPEEDUP_PAIR[0],
                    "slow": SPEEDUP_PAIR[1],
                    **_est_row(est),
                    "n_fast": mf.n,
                    "n_slow": ms.n,
                    "last_step": int(steps[-1]) if steps.size else "",
                }
            )
    return pd.DataFrame(rows)


def excluded(agg: Aggregation) -> pd.DataFrame:
    """Every environment and run left out of the normalised statistics, with the reason."""
    rows: list[dict[str, Any]] = []
    for exp in agg.jobs:
        norm_envs, no_ref = agg.normalisable(agg.envs_of(exp))
        for env in no_ref:
            rows.append(
                {
                    "experiment": exp,
                    "variant": "*",
                    "env": env,
                    "seed": "*",
                    "statistic": "normalised",
                    "status": "",
                    "reason": "no reference score in config/scores.yaml",
                }
            )
        for v in _variants(agg, exp):
            rows += agg.matrix(exp, v, norm_envs, "normalised").excluded
    return pd.DataFrame(rows).drop_duplicates() if rows else pd.DataFrame(columns=EXCLUDED_COLUMNS)


STATISTICS = {
    "intervals": intervals,
    "curves_iqm": curves_iqm,
    "profiles": profiles,
    "improvement": improvement,
    "steps_to_threshold": steps_to_threshold,
    "excluded": excluded,
}


def statistics(agg: Aggregation) -> dict[str, pd.DataFrame]:
    """Every rliable table of the profile."""
    return {name: table(agg) for name, table in STATISTICS.items()}


def budgets(agg: Aggregation) -> list[dict[str, Any]]:
    """Step budget, evaluation schedule per (variant, env), from the runs' configs."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (variant, env, _), run in sorted(agg.runs.items()):
        hp = run.config.get("hyperparameters", {})
        out.setdefault(
            (variant, env),
            {
                "variant": variant,
                "env": env,
                "total_steps": hp.get("total_steps"),
                "eval_every": hp.get("eval_every"),
                "eval_episodes": hp.get("eval_episodes"),
            },
        )
    return list(out.values())


def aggregate(
    profile: str,
    runs_root: Path,
    out_root: Path,
    reps: int | None = None,
    envs: list[str] | None = None,
) -> Path:
    """Compute and write every table (with `envs`, of the experiments restricted to those
    environments); returns the output directory."""
    agg = Aggregation(profile, runs_root, reps, envs)
    out = out_root / profile
    runs = agg.runs_table()
    tables = {"runs": runs, "curves": agg.curves_table(), **statistics(agg)}
    tables["claims"] = claims_table(agg)
    tables["published"] = published_table(tables["curves_iqm"], tables["curves"])
    problems = runs[runs["status"] != "ok"][["variant", "env", "seed", "status", "experiments"]]
    tables["problems"] = problems
    for name, df in tables.items():
        atomic_write_text(out / f"{name}.csv", csv_text(df))
    counts = runs["status"].map(lambda s: s.split(":")[0]).value_counts()
    atomic_write_json(
        out / "summary.json",
        {
            "profile": profile,
            "label": agg.label,
            "smoke": agg.smoke,
            "bootstrap_reps": agg.reps,
            "bootstrap_seed": stats.SEED,
            "confidence": stats.CONFIDENCE,
            "verdict_rule": stats.VERDICT_RULE,
            "envs": agg.envs,  # None: every environment of the profile's experiments
            "runs_expected": len(agg.expected()),
            "runs_found": len(agg.runs),
            "status_counts": {k: int(v) for k, v in sorted(counts.items())},
            "problems": problems.to_dict(orient="records"),
            "budgets": budgets(agg),
            "experiment_order": list(agg.jobs),
            "experiments": {
                e: {
                    "description": agg.catalogue["experiments"][e].get("description", ""),
                    "envs": agg.envs_of(e),
                    "variants": list(dict.fromkeys(j.variant for j in jobs)),
                }
                for e, jobs in agg.jobs.items()
            },
            "files": sorted(f"{n}.csv" for n in tables),
        },
    )
    return out
