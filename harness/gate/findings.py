"""What the regression check finds: the verdicts and the records behind them, shared by
`harness.gate.check` (which computes them) and `harness.gate.checkreport` (which prints
them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.gate.baseline import Baseline

PASS, REGRESSION, IMPROVEMENT, UNDERPOWERED = "pass", "regression", "improvement", "underpowered"
# Worst first: a pair takes its worst metric's verdict.
SEVERITY = (REGRESSION, IMPROVEMENT, UNDERPOWERED, PASS)


@dataclass(frozen=True)
class MetricTest:
    """One metric of one (variant, env): the numbers behind its verdict."""

    metric: str
    n_base: int
    n_cand: int
    iqm_base: float
    iqm_cand: float
    ci: tuple[float, float]  # of IQM(cand) - IQM(base), at level 1 - alpha
    p: float  # Mann-Whitney U, two-sided
    p_adj: float  # Holm over every test of the check
    min_detectable: float  # smallest difference of means detectable (power 0.8)
    verdict: str = PASS

    @property
    def testable(self) -> bool:
        return self.n_base >= 2 and self.n_cand >= 2


@dataclass
class Finding:
    """The verdict on one (variant, env) (statistical mode) or one run (exact mode)."""

    variant: str
    env: str
    seed: int | None
    verdict: str
    summary: str
    tests: list[MetricTest] = field(default_factory=list)


@dataclass
class Result:
    mode: str  # "statistical" or "exact"
    reason: str  # why this mode
    baseline: Baseline
    candidate: Path
    settings: dict[str, Any]
    findings: list[Finding]
    notes: list[str]  # what was not compared, and why

    def count(self, verdict: str) -> int:
        return sum(f.verdict == verdict for f in self.findings)
