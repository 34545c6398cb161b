"""`mbrl-bench check`: is a candidate (changed code) worse than a stored baseline?
(docs/regression.md).

Statistical mode, per (variant, env) present in both, for the final return and the AUC:
the bootstrap CI of IQM(candidate) - IQM(baseline), a two-sided Mann-Whitney U test, and
the smallest difference the seeds could detect (`harness.gate.twosample`). The p-values of all
tests of one check are Holm-adjusted, so a check raises a false alarm with probability at
most alpha however many pairs it compares. Verdict of a metric:

- regression / improvement: adjusted p < alpha and the CI lies below / above zero;
- underpowered: otherwise, when the smallest detectable difference (at alpha / number of
  tests, power 0.8) exceeds `tolerance` x |baseline IQM|: "no difference found" would
  not mean "no drop that matters";
- pass: otherwise.

A pair is a regression when a metric regresses or when a larger fraction of its candidate
runs failed (non-finite training: a defect, not noise) than of its baseline runs; else
improvement, underpowered, pass in that order. Exact mode (`--exact`, for refactors with
the same seeds on the same CPU and libraries) requires every candidate CSV to hash like
the baseline's. `--auto` picks exact mode when the baseline's runs and the candidate's
were produced by the same CPU model and torch CPU capability, Python, torch threads and
library versions.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.runs import DAMAGED, INCOMPLETE, Run, discover
from harness.analysis.stats import iqm
from harness.errors import ConfigError
from harness.gate import checkreport, twosample
from harness.gate.baseline import (
    MACHINE_KEYS,
    METRICS,
    Baseline,
    distinct,
    file_hashes,
    load,
    machine,
    machines,
)
from harness.gate.findings import (
    IMPROVEMENT,
    PASS,
    REGRESSION,
    SEVERITY,
    UNDERPOWERED,
    Finding,
    MetricTest,
    Result,
)
from harness.job.config import load_profile

_BOOTSTRAP_SEED = 0  # the report is deterministic


def metric_verdict(t: MetricTest, alpha: float, tolerance: float) -> str:
    if t.p_adj < alpha and t.ci[1] < 0:
        return REGRESSION
    if t.p_adj < alpha and t.ci[0] > 0:
        return IMPROVEMENT
    if t.min_detectable > tolerance * abs(t.iqm_base):
        return UNDERPOWERED
    return PASS


def _values(records: list[dict[str, Any]], metric: str) -> np.ndarray:
    x = [r[metric] for r in records if r["status"] == "ok" and r[metric] is not None]
    return np.asarray([v for v in x if math.isfinite(v)], dtype=np.float64)


def _raw_test(
    metric: str,
    base: np.ndarray,
    cand: np.ndarray,
    reps: int,
    alpha: float,
    n_tests: int,
    rng: np.random.Generator,
) -> MetricTest:
    nan = float("nan")
    iqm_b = float(iqm(base)) if len(base) else nan
    iqm_c = float(iqm(cand)) if len(cand) else nan
    if len(base) < 2 or len(cand) < 2:
        return MetricTest(
            metric, len(base), len(cand), iqm_b, iqm_c, (nan, nan), 1.0, 1.0, math.inf
        )
    ci = twosample.bootstrap_diff_ci(base, cand, reps, 1 - alpha, rng)
    p = twosample.rank_test(base, cand)
    sd = twosample.pooled_std(base, cand)
    mdd = twosample.min_detectable_diff(len(base), len(cand), sd, alpha / max(n_tests, 1))
    return MetricTest(metric, len(base), len(cand), iqm_b, iqm_c, ci, p, p, mdd)


def _failed_fraction(statuses: list[str]) -> float:
    return sum(s.startswith(("failed", DAMAGED)) for s in statuses) / max(len(statuses), 1)


def compare_statistical(
    base: dict[tuple[str, str], list[dict[str, Any]]],
    cand: dict[tuple[str, str], list[dict[str, Any]]],
    alpha: float,
    tolerance: float,
    reps: int,
) -> list[Finding]:
    """One finding per (variant, env) in both; records hold `status` and the METRICS."""
    pairs = sorted(set(base) & set(cand))
    data = {
        (pair, m): (_values(base[pair], m), _values(cand[pair], m))
        for pair in pairs
        for m in METRICS
    }
    n_tests = sum(len(b) >= 2 and len(c) >= 2 for b, c in data.values())
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    raw = {k: _raw_test(k[1], b, c, reps, alpha, n_tests, rng) for k, (b, c) in data.items()}
    testable = [k for k, t in raw.items() if t.testable]
    adjusted = dict(zip(testable, twosample.holm([raw[k].p for k in testable]), strict=True))
    findings = []
    for pair in pairs:
        tests = []
        for m in METRICS:
            t = dataclasses.replace(raw[(pair, m)], p_adj=adjusted.get((pair, m), 1.0))
            tests.append(dataclasses.replace(t, verdict=metric_verdict(t, alpha, tolerance)))
        verdict = min((t.verdict for t in tests), key=SEVERITY.index)
        fail_b = _failed_fraction([r["status"] for r in base[pair]])
        fail_c = _failed_fraction([r["status"] for r in cand[pair]])
        summary = "; ".join(checkreport.metric_line(t) for t in tests)
        if fail_c > fail_b:
            verdict = REGRESSION
            summary = (
                f"{fail_c:.0%} of candidate runs failed vs {fail_b:.0%} of baseline; {summary}"
            )
        findings.append(Finding(pair[0], pair[1], None, verdict, summary, tests))
    return findings


def candidate_records(cand: dict[tuple[str, str], list[Run]]) -> dict[tuple[str, str], list[dict]]:
    """What the statistical check reads of the candidate's finished runs."""
    return {
        pair: [
            {"status": r.status, **{m: (r.done or {}).get(m) for m in METRICS}}
            for r in runs
            if r.status != INCOMPLETE
        ]
        for pair, runs in cand.items()
    }


def compare_exact(baseline: Baseline, cand: dict[tuple[str, str], list[Run]]) -> list[Finding]:
    """One finding per candidate run that has a baseline run with the same seed."""
    findings = []
    for pair in sorted(set(baseline.groups) & set(cand)):
        base = {r["seed"]: r for r in baseline.groups[pair]}
        for run in sorted(cand[pair], key=lambda r: r.seed):
            b = base.get(run.seed)
            if b is None:
                continue
            diffs = (
                [] if run.status == b["status"] else [f"status {run.status!r} != {b['status']!r}"]
            )
            try:
                got = file_hashes(run)
            except ConfigError:  # a damaged run's unreadable file: its status says why
                got = {}
            want = b["sha256"]
            for name in sorted(set(got) | set(want)):
                if name not in got:
                    diffs.append(f"{name} missing")
                elif name not in want:
                    diffs.append(f"{name} not in the baseline")
                elif got[name] != want[name]:
                    diffs.append(f"{name} differs")
            verdict = REGRESSION if diffs else PASS
            summary = "; ".join(diffs) or f"{len(want)} files byte-identical"
            findings.append(Finding(pair[0], pair[1], run.seed, verdict, summary))
    return findings


def choose_mode(baseline: Baseline, runs: list[Run], exact: bool, auto: bool) -> tuple[str, str]:
    """("exact" | "statistical", why)."""
    if exact:
        return "exact", "--exact requested"
    if not auto:
        return "statistical", "default mode (--exact or --auto for byte-identical checks)"
    # machine() again on the stored records: a baseline saved before a key was recorded has
    # no full record (None)
    base = [machine(m) for m in baseline.meta.get("machines") or [None]]
    cand = distinct([m for r in runs for m in machines(r.provenance)])
    recorded = f"recorded in full ({', '.join(MACHINE_KEYS)})"
    if len(base) != 1 or base[0] is None:
        return (
            "statistical",
            f"the baseline's runs come from {len(base)} machine setups or none {recorded}",
        )
    if len(cand) != 1 or cand[0] is None:
        return (
            "statistical",
            f"the candidate's runs come from {len(cand)} machine setups or none {recorded}",
        )
    b, c = base[0], cand[0]
    diffs = [f"{k}: {b[k]!r} vs {c[k]!r}" for k in MACHINE_KEYS if k != "packages" and b[k] != c[k]]
    pkgs = sorted(set(b["packages"]) | set(c["packages"]))
    diffs += [
        f"{p} {b['packages'].get(p)} vs {c['packages'].get(p)}"
        for p in pkgs
        if b["packages"].get(p) != c["packages"].get(p)
    ]
    if diffs:
        return "statistical", "baseline and candidate differ (" + "; ".join(diffs) + ")"
    return "exact", (
        f"same CPU model ({b['cpu']}, {b['cpu_capability']} kernels), Python {b['python']}, "
        f"torch threads {b['torch_threads']} and library versions as the baseline"
    )


def _rename(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        cand, sep, base = item.partition("=")
        if not sep or not cand or not base:
            raise ConfigError(f"malformed --rename {item!r}: expected CANDIDATE=BASELINE")
        out[cand] = base
    return out


def _group(runs: list[Run], rename: dict[str, str]) -> dict[tuple[str, str], list[Run]]:
    groups: dict[tuple[str, str], list[Run]] = {}
    seen: dict[tuple[str, str, int], Path] = {}
    for r in runs:
        key = (rename.get(r.variant, r.variant), r.env, r.seed)
        if key in seen:
            raise ConfigError(f"candidate run {key} appears twice: {seen[key]} and {r.path}")
        seen[key] = r.path
        groups.setdefault(key[:2], []).append(r)
    return groups


def _coverage_notes(
    baseline: Baseline, cand: dict[tuple[str, str], list[Run]], mode: str
) -> list[str]:
    notes = [
        f"{v}/{e}: in the baseline, not in the candidate (not compared)"
        for v, e in sorted(set(baseline.groups) - set(cand))
    ]
    notes += [
        f"{v}/{e}: no baseline (not compared)" for v, e in sorted(set(cand) - set(baseline.groups))
    ]
    for pair in sorted(set(baseline.groups) & set(cand)):
        base_seeds = {r["seed"] for r in baseline.groups[pair]}
        for r in cand[pair]:
            if r.status == INCOMPLETE:
                notes.append(f"{pair[0]}/{pair[1]} seed {r.seed}: incomplete (left out)")
            elif r.status.startswith(DAMAGED):
                notes.append(f"{pair[0]}/{pair[1]} seed {r.seed}: {r.status} (counted as failed)")
            elif mode == "exact" and r.seed not in base_seeds:
                notes.append(f"{pair[0]}/{pair[1]} seed {r.seed}: no baseline run with this seed")
    return notes


def run_check(
    baseline_dir: Path,
    candidate: Path,
    *,
    exact: bool = False,
    auto: bool = False,
    alpha: float = 0.05,
    tolerance: float = 0.5,
    rename: list[str] = (),
) -> Result:
    """Compare the candidate runs under `candidate` with the baseline in `baseline_dir`
    (`rename`: CAND=BASE variant names); exact, statistical or chosen by `auto`."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"--alpha must be in (0, 1), got {alpha}")
    if tolerance < 0:
        raise ConfigError(f"--tolerance must be >= 0, got {tolerance}")
    renames = _rename(list(rename))
    baseline = load(baseline_dir)
    found = discover(candidate)
    runs = [r for r in found if r.profile == baseline.profile]
    others = [r for r in found if r.profile != baseline.profile]
    if not runs:
        raise ConfigError(f"no candidate runs of profile {baseline.profile!r} under {candidate}")
    cand = _group(runs, renames)
    if not set(cand) & set(baseline.groups):
        raise ConfigError(
            f"no (variant, env) of the candidate ({', '.join('/'.join(k) for k in sorted(cand))}) "
            f"is in the baseline {baseline_dir}"
        )
    mode, reason = choose_mode(baseline, runs, exact, auto)
    reps = int(load_profile(baseline.profile)["stats"]["bootstrap_reps"])
    settings = {
        "alpha": alpha,
        "tolerance": tolerance,
        "bootstrap_reps": reps,
        "power": twosample.POWER,
        "rename": renames,
    }
    if mode == "exact":
        findings = compare_exact(baseline, cand)
        if not findings:
            raise ConfigError("--exact: no candidate run has a baseline run with the same seed")
    else:
        findings = compare_statistical(
            baseline.groups, candidate_records(cand), alpha, tolerance, reps
        )
    notes = _coverage_notes(baseline, cand, mode)
    if others:
        notes.append(
            f"{len(others)} run(s) of another profile than {baseline.profile!r} under "
            f"{candidate} (not compared), e.g. {others[0].path}"
        )
    return Result(mode, reason, baseline, candidate, settings, findings, notes)
