"""Statistics over score arrays (docs/statistics.md): thin, seeded
wrappers of rliable (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical
Precipice") and the claim verdict rule. Pure functions over arrays shaped
`runs x tasks (x steps)`, as in rliable.

rliable's bootstrap draws from the global `np.random` (its `random_state` argument does
not reach `StratifiedBootstrap.update_indices`), so every estimate here seeds `np.random`
with `SEED` immediately before it: each number is reproducible on its own, whatever was
computed before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rliable import library as rly
from rliable import metrics
from scipy import stats as sps

SEED = 0
CONFIDENCE = 0.95


def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """The interquartile mean (mean of the middle 50%) of `scores` along `axis`, over all
    of it by default: scipy's `trim_mean` with a 25% cut, exactly rliable's
    `metrics.aggregate_iqm` on a runs x tasks matrix. The one IQM of the harness."""
    return sps.trim_mean(scores, proportiontocut=0.25, axis=axis)


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "iqm": iqm,
    "median": metrics.aggregate_median,
    "mean": metrics.aggregate_mean,
    "optimality_gap": metrics.aggregate_optimality_gap,
}
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
MIN_SEEDS = 3  # fewer seeds per compared variant: inconclusive whatever the interval


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% percentile-bootstrap interval."""

    value: float
    low: float
    high: float


def interval(
    scores: np.ndarray | Sequence[np.ndarray], func: Callable[..., np.ndarray], reps: int
) -> tuple[np.ndarray, np.ndarray]:
    """(point [K], ci [2, K]) of `func` by rliable's stratified bootstrap (runs resampled
    within each task; a list of arrays is resampled independently per array)."""
    data = scores if isinstance(scores, np.ndarray) else list(scores)
    np.random.seed(SEED)
    point, ci = rly.get_interval_estimates(
        {"x": data}, func, reps=reps, confidence_interval_size=CONFIDENCE
    )
    return np.atleast_1d(point["x"]), np.asarray(ci["x"]).reshape(2, -1)


def aggregates(scores: np.ndarray, reps: int) -> dict[str, Estimate]:
    """IQM, median, mean and optimality gap of normalised scores [runs, tasks]."""
    point, ci = interval(scores, lambda x: np.array([f(x) for f in AGGREGATES.values()]), reps)
    return {k: Estimate(*map(float, (point[i], *ci[:, i]))) for i, k in enumerate(AGGREGATES)}


def iqm_per_step(scores: np.ndarray) -> np.ndarray:
    """IQM over runs and tasks at each step of scores [runs, tasks, steps]: `iqm` of each
    step's runs x tasks, in one call over a contiguous [steps, runs * tasks] array because
    the bootstrap calls it `reps` times per curve."""
    a = np.ascontiguousarray(scores.reshape(-1, scores.shape[-1]).T)  # [steps, runs*tasks]
    return iqm(a, axis=1)


def iqm_curve(scores: np.ndarray, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample-efficiency curve: IQM per step with CIs, scores [runs, tasks, steps]."""
    return interval(scores, iqm_per_step, reps)


def performance_profile(
    scores: np.ndarray, taus: np.ndarray, reps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of runs above each tau (rliable score distribution) with CIs."""
    np.random.seed(SEED)
    prof, ci = rly.create_performance_profile(
        {"x": scores},
        taus,
        custom_profile_func=_score_distribution,
        reps=reps,
        confidence_interval_size=CONFIDENCE,
    )
    return prof["x"], ci["x"]


def _score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable's default profile (`score_distributions`: mean of scores > tau over all
    runs and tasks) for every tau at once; counts are exact, so the values are identical."""
    return (scores.reshape(-1, 1) > np.asarray(taus)).mean(axis=0)


def improvement(x: np.ndarray, y: np.ndarray, reps: int) -> Estimate:
    """P(X > Y) averaged over tasks, x [runs_x, tasks], y [runs_y, tasks]."""
    point, ci = interval(
        [x, y], lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps
    )
    return Estimate(float(point[0]), float(ci[0, 0]), float(ci[1, 0]))


def first_step_reaching(steps: np.ndarray, curve: np.ndarray, threshold: float) -> float:
    """First step at which the curve reaches the threshold; inf if it never does."""
    hit = np.nonzero(curve >= threshold)[0]
    return float(steps[hit[0]]) if hit.size else math.inf


def speedup(steps: np.ndarray, fast: np.ndarray, slow: np.ndarray) -> float:
    """Steps-to-threshold ratio: threshold = `slow`'s final IQM; the steps `slow` needs to
    first reach it over the steps `fast` needs (0 if `fast` never does). Arrays are
    [runs, tasks, steps] on the common step grid `steps`."""
    slow_curve, fast_curve = iqm_per_step(slow), iqm_per_step(fast)
    threshold = slow_curve[-1]
    s_slow = first_step_reaching(steps, slow_curve, threshold)
    s_fast = first_step_reaching(steps, fast_curve, threshold)
    return s_slow / s_fast


def speedup_interval(steps: np.ndarray, fast: np.ndarray, slow: np.ndarray, reps: int) -> Estimate:
    """`speedup` with a stratified bootstrap CI (both arrays resampled independently)."""
    point, ci = interval([fast, slow], lambda a, b: np.array([speedup(steps, a, b)]), reps)
    return Estimate(float(point[0]), float(ci[0, 0]), float(ci[1, 0]))


@dataclass(frozen=True)
class Region:
    """Where a claim's statistic must lie for the claim to hold: from `low` to `high`, each
    bound included unless marked open. "X better than Y" is P(X > Y) > 0.5 (ledger R4):
    `Region(0.5, 1.0, low_open=True)`; a tie at exactly 0.5 is outside it."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def contains(self, x: float) -> bool:
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        return above and below

    def __str__(self) -> str:
        lo, hi = (">" if self.low_open else ">="), ("<" if self.high_open else "<=")
        if self.high == math.inf:
            return f"{lo} {self.low:g}"
        if self.low == -math.inf:
            return f"{hi} {self.high:g}"
        left, right = ("(" if self.low_open else "["), (")" if self.high_open else "]")
        return f"in {left}{self.low:g}, {self.high:g}{right}"


VERDICT_RULE = (
    "A claim holds where its statistic lies in the claim's region (a bound written > or ( "
    'excludes its value: a tie P = 0.5 is not "better"). Verdict: supported when '
    "the whole 95% CI lies inside the region; contradicted when the whole CI lies outside "
    "it; inconclusive when the CI straddles a boundary, when a compared variant has fewer "
    f"than {MIN_SEEDS} seeds, when the statistic could not be computed, or whenever the "
    "profile is `smoke` (tiny budgets). A claim made of several comparisons is contradicted "
    "if any is, supported only if all are, inconclusive otherwise."
)


def verdict(est: Estimate | None, region: Region, n_seeds: int, smoke: bool) -> str:
    """The verdict rule of `VERDICT_RULE` for one estimate. A CI [low, high] lies inside a
    region when both ends do (the region is an interval); outside it when it lies wholly
    beyond one bound, i.e. no point of [low, high] is in the region."""
    if smoke or est is None or n_seeds < MIN_SEEDS:
        return INCONCLUSIVE
    if not (math.isfinite(est.low) and math.isfinite(est.high)):
        return INCONCLUSIVE
    if region.contains(est.low) and region.contains(est.high):
        return SUPPORTED
    below = est.high <= region.low if region.low_open else est.high < region.low
    above = est.low >= region.high if region.high_open else est.low > region.high
    if below or above:
        return CONTRADICTED
    return INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """Verdict of a claim made of several comparisons."""
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return INCONCLUSIVE
