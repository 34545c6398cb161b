"""How the report and the claims table print numbers: counts and step budgets as integers,
values of 100 and more with one decimal (122.5 stays "122.5"), smaller ones with three
significant digits, non-finite values as "n/a"."""

from __future__ import annotations

import math
from typing import Any


def fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float | int) and not isinstance(x, bool):
        if isinstance(x, float) and not math.isfinite(x):
            return "n/a"
        if float(x).is_integer() and abs(x) < 1e15:
            return str(int(x))  # step budgets, seeds, counts
        if abs(x) >= 100:
            return f"{x:.1f}"
        return f"{x:.{digits}g}"
    return "n/a" if x is None or (isinstance(x, str) and not x) else str(x)


def percent(p: float) -> str:
    """A probability as a whole percentage ("83%"); "n/a" when not finite."""
    return f"{100 * p:.0f}%" if math.isfinite(p) else "n/a"
