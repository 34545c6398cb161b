"""Two-sample statistics of the regression check: candidate seeds vs baseline seeds of one
(variant, environment). Pure functions over 1-D arrays of per-seed scores.

- IQM: `harness.analysis.stats.iqm`, rliable's `aggregate_iqm` (scipy `trim_mean`, 25% cut).
- `bootstrap_diff_ci`: percentile CI of IQM(candidate) - IQM(baseline), resampling the
  seeds of each group independently (rliable's stratified bootstrap with one task).
- `rank_test`: two-sided Mann-Whitney U (robust to the bimodal returns of RL runs).
- `min_detectable_diff`: the power statement of Colas, Sigaud & Oudeyer 2018, "How Many
  Random Seeds? Statistical Power Analysis in Deep RL Experiments" (Sec. 5): the smallest
  difference of means that a two-sided t-test at level alpha detects with the given power
  at these sample sizes and this pooled standard deviation (noncentral t, not the normal
  approximation, which is optimistic at 5-10 seeds).
- `holm`: Holm's step-down adjustment, so that one check over many (variant, env,
  metric) tests raises a false alarm with probability at most alpha.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from harness.analysis.stats import iqm

POWER = 0.8  # Colas et al. 2018 (and the usual convention): beta = 0.2


def bootstrap_diff_ci(
    base: np.ndarray, cand: np.ndarray, reps: int, level: float, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile CI at `level` of IQM(cand) - IQM(base); base [n_b], cand [n_c]."""
    b = base[rng.integers(0, len(base), size=(reps, len(base)))]  # [reps, n_b]
    c = cand[rng.integers(0, len(cand), size=(reps, len(cand)))]  # [reps, n_c]
    diff = iqm(c, axis=1) - iqm(b, axis=1)  # [reps]
    lo, hi = np.quantile(diff, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def rank_test(base: np.ndarray, cand: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (1 when every score is equal: nothing to rank)."""
    if np.all(np.concatenate([base, cand]) == base[0]):
        return 1.0
    return float(stats.mannwhitneyu(cand, base, alternative="two-sided").pvalue)


def pooled_std(base: np.ndarray, cand: np.ndarray) -> float:
    """sqrt(((n_b - 1) s_b^2 + (n_c - 1) s_c^2) / (n_b + n_c - 2)), sample variances."""
    nb, nc = len(base), len(cand)
    ss = (nb - 1) * np.var(base, ddof=1) + (nc - 1) * np.var(cand, ddof=1)
    return float(math.sqrt(ss / (nb + nc - 2)))


def min_detectable_diff(n_b: int, n_c: int, sd: float, alpha: float, power: float = POWER) -> float:
    """Smallest true difference of means detected with probability `power` by a two-sided
    t-test at level `alpha` with n_b and n_c seeds and standard deviation `sd`: the delta
    with P(|T| > t_crit) = power, T ~ noncentral t(df = n_b + n_c - 2, delta / se)."""
    if n_b < 2 or n_c < 2:
        return math.inf
    if sd == 0:
        return 0.0
    df = n_b + n_c - 2
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    se = sd * math.sqrt(1 / n_b + 1 / n_c)

    def shortfall(ncp: float) -> float:  # the lower tail (< alpha / 2) can be NaN in scipy
        lower = stats.nct.cdf(-t_crit, df, ncp)
        return stats.nct.sf(t_crit, df, ncp) + (lower if math.isfinite(lower) else 0.0) - power

    hi = 1e3
    if not shortfall(hi) > 0:  # not even detectable at 1000 standard errors
        return math.inf
    return float(optimize.brentq(shortfall, 0.0, hi) * se)  # shortfall(0) = alpha - power < 0


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
