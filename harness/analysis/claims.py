"""The claims table: each claim of the PMAC paper (Wang et al., "Live in the Moment") and of
the Dyna-Q CartPole study, the statistic that tests it, its 95% CI, the seeds, whether the
two sides ran the same budget, the figure that shows the statistic, a verdict by
`harness.analysis.stats.VERDICT_RULE` and one sentence in plain words.

Statistics: "better"/"lower" claims use rliable's probability of improvement P(X > Y)
(per environment, averaged; scale-free, so raw returns and errors need no normalisation),
holding when P > 0.5 (a tie is not "better"); the sample-efficiency claim of Sec. 5.1 uses
the steps-to-threshold ratio per environment, those of the weighting schemes (Sec. 5.3) the
area under the learning curve; the CartPole claims the mean final return over seeds. A
claim made of several comparisons (`COMBINED`, the alpha claim) shows the weakest. When
the two sides' step budgets differ, a comparison uses the last evaluation step both
reached (`Aggregation.common_budget`) and the row says so in `budget`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from rliable import metrics

from harness.analysis import stats
from harness.analysis.numbers import fmt, percent
from harness.analysis.stats import Estimate, Region
from harness.analysis.tables import Aggregation

BETTER = Region(0.5, 1.0, low_open=True)  # P(X > Y) > 0.5 (docs/ambiguities.md R4)
SPEEDUP = Region(1.8)  # "almost two times": at least 1.8x (docs/ambiguities.md R3)
DYNA_Q = Region(195.0)  # "reaches reward >= 195"
MODEL_FREE = Region(125.0, 175.0)  # "plateaus around 150": within +-25 (docs/ambiguities.md R5)
# Where each claim is made, for a reader to open: the paper's title and section.
PAPER_TITLE = (
    'Wang et al., "Live in the Moment: Learning Dynamics Model Adapted to Evolving Policy"'
)
SEED1_TITLE = '"Model-Based Reinforcement Learning" (the Dyna-Q CartPole recipe)'

NAMES = {
    "pmac": "PMAC",
    "mbpo": "MBPO",
    "pets": "PETS",
    "sac": "SAC",
    "pmac_model_only": "model-only PMAC",
    "pmac_rollout_only": "rollout-only PMAC",
    "pdml": "PDML",
    "mbpo_per": "PER",
    "mbpo_recall": "RECALL",
    "mbpo_maper": "MaPER",
    "dyna_q": "Dyna-Q",
    "dqn": "DQN",
}
# What P(X > Y) counts, per compared value, in plain words ("{x}'s ... {y}'s").
WHAT = {
    "final_return": "final return beat {y}'s",
    "auc": "area under the learning curve beat {y}'s",
    "-local_error": "local one-step model error was below {y}'s",
    "-compounding_error": "compounding error was below {y}'s",
}


def name(variant: str) -> str:
    return NAMES.get(variant, variant)


# The pairwise claims: (claim, source section, experiment, x, y, value, statistic, figures).
# aggregate.improvement writes a row for each, so its figure shows every one of them.
PAIRWISE: list[tuple[str, str, str, str, str, str, str, str]] = [
    (
        "PMAC: better asymptotic performance than MBPO",
        "Sec. 5.1, Fig. 2",
        "main",
        "pmac",
        "mbpo",
        "final_return",
        "P(PMAC final return > MBPO)",
        "rliable_improvement_main fig2_learning_curves",
    ),
    (
        "PMAC: better asymptotic performance than PETS",
        "Sec. 5.1, Fig. 2",
        "main",
        "pmac",
        "pets",
        "final_return",
        "P(PMAC final return > PETS)",
        "rliable_improvement_main fig2_learning_curves",
    ),
    (
        "PMAC: lower local one-step model error than MBPO",
        "Sec. 5.2, Fig. 3a-c",
        "main",
        "pmac",
        "mbpo",
        "-local_error",
        "P(PMAC local one-step error < MBPO), run mean over evaluations",
        "rliable_improvement_main fig3abc_one_step_error",
    ),
    (
        "PMAC: lower compounding error than MBPO",
        "Sec. 5.2, Fig. 3d",
        "main",
        "pmac",
        "mbpo",
        "-compounding_error",
        "P(PMAC compounding error < MBPO), mean over steps and h",
        "rliable_improvement_main fig3d_compounding_error",
    ),
    (
        "Mixture for model learning only helps (vs MBPO)",
        "App. C.1",
        "mechanism",
        "pmac_model_only",
        "mbpo",
        "final_return",
        "P(model-only final return > MBPO)",
        "rliable_improvement_mechanism fig4_mechanism",
    ),
    (
        "Mixture for rollout starts only helps (vs MBPO)",
        "App. C.1",
        "mechanism",
        "pmac_rollout_only",
        "mbpo",
        "final_return",
        "P(rollout-only final return > MBPO)",
        "rliable_improvement_mechanism fig4_mechanism",
    ),
    (
        "Dyna-Q: better final return than model-free Q-learning at 5K transitions",
        "Build it, expected outcome",
        "cartpole",
        "dyna_q",
        "dqn",
        "final_return",
        "P(Dyna-Q final return > DQN)",
        "rliable_improvement_cartpole cartpole_learning_curves",
    ),
]


# Claims made of several P(x > y) comparisons (x, y, value): (claim, source section,
# experiment, comparisons, statistic, figures); supported only if every comparison is,
# contradicted if any is (stats.combine). Sample efficiency: the area under the learning
# curve (docs/ambiguities.md R9). aggregate.improvement writes a row for each comparison.
PRIORITISED = ("mbpo_per", "mbpo_recall", "mbpo_maper")
COMBINED: list[tuple[str, str, str, list[tuple[str, str, str]], str, str]] = [
    (
        "PMAC: better sample efficiency and final return than PER, RECALL and MaPER",
        "Sec. 5.3, Fig. 3g/h",
        "weighting",
        [("pmac", y, v) for y in PRIORITISED for v in ("auc", "final_return")],
        "min over PER, RECALL, MaPER and (AUC, final return) of P(PMAC > X)",
        "rliable_improvement_weighting fig3gh_weighting",
    ),
    (
        "Age decay vs policy distance: PDML's 1 / TV weights beat PMAC's age decay in "
        "sample efficiency and final return",
        "Sec. 3.2 Eq. 4 (age decay) vs its ICML 2023 release, si0wang/PDML "
        "sac/replay_memory.py (1 / TV)",
        "weighting",
        [("pdml", "pmac", v) for v in ("auc", "final_return")],
        "min over (AUC, final return) of P(PDML > PMAC)",
        "rliable_improvement_weighting fig3gh_weighting",
    ),
]


def _row(claim, source, experiment, statistic, est, region, n, verdict, note="", *,
         budget="", figure="", sentence="") -> dict[str, Any]:  # fmt: skip
    e = est or Estimate(math.nan, math.nan, math.nan)
    return {
        "claim": claim,
        "source": source,
        "experiment": experiment,
        "statistic": statistic,
        "estimate": e.value,
        "ci_low": e.low,
        "ci_high": e.high,
        "region": str(region),
        "n_seeds": n,
        "verdict": verdict,
        "budget": budget or ("same" if est is not None else "n/a"),
        "figure": figure,
        "note": note,
        "sentence": sentence,
    }


def _absent(agg: Aggregation, experiment: str, variants: list[str]) -> str:
    if experiment not in agg.jobs:
        where = f"on {', '.join(agg.envs)}" if agg.envs else f"in the {agg.profile} profile"
        return f"experiment {experiment!r} is not run {where}"
    have = {j.variant for j in agg.jobs[experiment]}
    missing = [v for v in variants if v not in have]
    return f"variants not run: {', '.join(missing)}" if missing else ""


def _note(agg: Aggregation, note: str = "") -> str:
    parts = [note] if note else []
    if agg.smoke:
        parts.append("smoke profile: tiny budgets, never conclusive")
    return "; ".join(parts)


def _why(agg: Aggregation, verdict: str, n: int) -> str:
    """The verdict, with the reason when the rule made it inconclusive whatever the CI."""
    if verdict != stats.INCONCLUSIVE:
        return verdict
    if agg.smoke:
        return f"{verdict} (smoke profile)"
    if n < stats.MIN_SEEDS:
        return f"{verdict} (fewer than {stats.MIN_SEEDS} seeds)"
    return verdict


def _ci(est: Estimate, scale=fmt) -> str:
    return f"95% CI {scale(est.low)}-{scale(est.high)}"


def _seeds(nx: int, ny: int) -> str:
    return f"{nx} seeds" if nx == ny else f"{nx} vs {ny} seeds"


def _untested(claim: str, why: str) -> str:
    return f"{claim}: not tested ({why})."


def _at(at_step: dict[str, int], envs: list[str]) -> str:
    if not at_step:
        return ""
    if list(at_step) == list(envs) and len(envs) == 1:
        steps = f"step {at_step[envs[0]]:,}"
    else:
        steps = ", ".join(f"step {s:,} on {env}" for env, s in at_step.items())
    return f", compared at {steps} (unequal budgets: the last step both evaluated)"


def _share(est: Estimate) -> str:
    """P(X > Y) in words: "every seed pair" / "no seed pair" when degenerate (0 or 1 with a
    zero-width CI), else "83% of seed pairs (95% CI 60%-100%)"."""
    if est.low == est.high == est.value and est.value in (0.0, 1.0):
        return "every seed pair" if est.value == 1.0 else "no seed pair"
    return f"{percent(est.value)} of seed pairs ({_ci(est, percent)})"


def poi_sentence(agg, x, y, value, envs, est, nx, ny, at_step, verdict) -> str:
    """ "PMAC's final return beat MBPO's in 83% of seed pairs (95% CI 60%-100%) on hopper,
    3 seeds: supported." """
    if est is None:
        return f"{name(x)} vs {name(y)}: not computable (no complete runs to compare)."
    return (
        f"{name(x)}'s {WHAT[value].format(y=name(y))} in {_share(est)} on {', '.join(envs)}"
        f"{_at(at_step, envs)}, {_seeds(nx, ny)}: {_why(agg, verdict, min(nx, ny))}."
    )


def _pairwise_claims(agg: Aggregation) -> list[dict[str, Any]]:
    rows = []
    for claim, section, exp, x, y, value, statistic, figure in PAIRWISE:
        source = f"{PAPER_TITLE if exp != 'cartpole' else SEED1_TITLE}, {section}"
        absent = _absent(agg, exp, [x, y])
        if absent:
            rows.append(
                _row(claim, source, exp, statistic, None, BETTER, 0, stats.INCONCLUSIVE,
                     _note(agg, absent), figure=figure, sentence=_untested(claim, absent))
            )  # fmt: skip
            continue
        envs = agg.envs_of(exp)
        c = agg.pairwise(exp, x, y, value, envs)
        note = "" if c.est is not None else "no complete runs (or no diagnostics) to compare"
        v = stats.verdict(c.est, BETTER, min(c.n_x, c.n_y), agg.smoke)
        sentence = poi_sentence(agg, x, y, value, envs, c.est, c.n_x, c.n_y, c.at_step, v)
        rows.append(
            _row(claim, source, exp, statistic, c.est, BETTER, f"{c.n_x} vs {c.n_y}", v,
                 _note(agg, note), budget=c.budget, figure=figure, sentence=sentence)
        )  # fmt: skip
    return rows


def _speedup_claims(agg: Aggregation) -> list[dict[str, Any]]:
    claim = "PMAC: almost 2x the sample efficiency of MBPO"
    statistic = "MBPO steps to its final IQM / PMAC steps to the same IQM"
    source, figure = f"{PAPER_TITLE}, Abstract and Sec. 5.1", "steps_to_threshold"
    absent = _absent(agg, "main", ["pmac", "mbpo"])
    if absent:
        return [
            _row(claim, source, "main", statistic, None, SPEEDUP, 0, stats.INCONCLUSIVE,
                 _note(agg, absent), figure=figure, sentence=_untested(claim, absent))
        ]  # fmt: skip
    rows = []
    for env in agg.envs_of("main"):
        est, mf, ms, steps = agg.speedup("main", env)
        budget, _ = agg.common_budget("main", "pmac", "mbpo", [env])
        v = stats.verdict(est, SPEEDUP, min(mf.n, ms.n), agg.smoke)
        note = "" if est is not None else "no complete runs with shared evaluation steps"
        last = f"{int(steps[-1]):,}" if steps.size else "?"
        verdict = _why(agg, v, min(mf.n, ms.n))
        if est is None:
            sentence = f"PMAC vs MBPO sample efficiency on {env}: not computable ({note})."
        elif est.value == 0:
            sentence = (
                f"PMAC did not reach MBPO's final return on {env} within {last} steps "
                f"(ratio 0, {_ci(est)}), {_seeds(mf.n, ms.n)}: {verdict}."
            )
        else:
            sentence = (
                f"PMAC reached MBPO's final return {fmt(est.value)}x sooner on {env}, "
                f"{_ci(est)}, {_seeds(mf.n, ms.n)}: {verdict}."
            )
        rows.append(
            _row(f"{claim} ({env})", source, "main", statistic, est, SPEEDUP,
                 f"{mf.n} vs {ms.n}", v, _note(agg, note), budget=budget, figure=figure,
                 sentence=sentence)
        )  # fmt: skip
    return rows


def _weakest(agg: Aggregation, claim: str, source: str, exp: str,
             comparisons: list[tuple[str, str, str]], statistic: str, figure: str, lead,
             absent: str = "") -> dict[str, Any]:  # fmt: skip
    """A claim made of several P(x > y) comparisons (x, y, value): the verdict combines
    theirs, the row and its sentence show the weakest; `lead(x, y, value)` words it."""
    absent = _absent(agg, exp, sorted({v for c in comparisons for v in c[:2]})) or absent
    if absent:
        return _row(claim, source, exp, statistic, None, BETTER, 0, stats.INCONCLUSIVE,
                    _note(agg, absent), figure=figure,
                    sentence=_untested(claim, absent))  # fmt: skip
    envs = agg.envs_of(exp)
    results = [(c, agg.pairwise(exp, *c, envs)) for c in comparisons]
    verdicts = [stats.verdict(r.est, BETTER, min(r.n_x, r.n_y), agg.smoke) for _, r in results]
    finite = [r for r in results if r[1].est is not None]
    if not finite:
        note = "no complete runs to compare"
        return _row(claim, source, exp, statistic, None, BETTER, 0, stats.INCONCLUSIVE,
                    _note(agg, note), figure=figure,
                    sentence=_untested(claim, note))  # fmt: skip
    (x, y, value), c = min(finite, key=lambda r: r[1].est.value)
    verdict = stats.combine(verdicts)
    sentence = (
        f"{lead(x, y, value)} in {_share(c.est)} on {', '.join(envs)}{_at(c.at_step, envs)}, "
        f"{_seeds(c.n_x, c.n_y)}: {_why(agg, verdict, min(c.n_x, c.n_y))}."
    )
    budget = "; ".join(dict.fromkeys(r[1].budget for r in results if r[1].budget))
    return _row(claim, source, exp, statistic, c.est, BETTER, f"{c.n_x} vs {c.n_y}", verdict,
                _note(agg, f"weakest comparison: {x} vs {y}, {value}"), budget=budget,
                figure=figure, sentence=sentence)  # fmt: skip


def _alpha_claim(agg: Aggregation) -> dict[str, Any]:
    claim, exp = "PMAC: alpha = 0.9 is the best policy-adaptation rate", "alpha_sweep"
    statistic = "min over other alphas of P(alpha 0.9 final return > alpha)"
    source, figure = f"{PAPER_TITLE}, App. C.2", "rliable_improvement_alpha_sweep figC2_alpha_sweep"
    others = [
        v
        for v in dict.fromkeys(j.variant for j in agg.jobs.get(exp, []))
        if v.startswith("pmac_alpha")
    ]
    return _weakest(
        agg, claim, source, exp, [("pmac", o, "final_return") for o in others], statistic,
        figure, lambda x, y, v: f"alpha = 0.9's final return beat {y}'s, the closest other alpha",
        absent="" if others else "no other alpha is run",
    )  # fmt: skip


def _combined_claims(agg: Aggregation) -> list[dict[str, Any]]:
    def lead(n: int):
        return lambda x, y, v: (
            f"{name(x)}'s {WHAT[v].format(y=name(y))} (the weakest of {n} comparisons)"
        )

    return [
        _weakest(
            agg,
            claim,
            f"{PAPER_TITLE}, {section}",
            exp,
            comparisons,
            statistic,
            figure,
            lead(len(comparisons)),
        )
        for claim, section, exp, comparisons, statistic, figure in COMBINED
    ]


def _cartpole_claims(agg: Aggregation) -> list[dict[str, Any]]:
    spec = [
        ("Dyna-Q reaches a return >= 195 on CartPole at 5K real transitions", "dyna_q", DYNA_Q),
        ("Model-free Q-learning plateaus around 150 at 5K transitions", "dqn", MODEL_FREE),
    ]
    source, figure = f"{SEED1_TITLE}, Build it, expected outcome", "cartpole_learning_curves"
    rows = []
    for claim, variant, region in spec:
        statistic = f"mean final return of {variant} over seeds"
        absent = _absent(agg, "cartpole", [variant])
        if absent:
            rows.append(
                _row(claim, source, "cartpole", statistic, None, region, 0, stats.INCONCLUSIVE,
                     _note(agg, absent), figure=figure, sentence=_untested(claim, absent))
            )  # fmt: skip
            continue
        m = agg.matrix("cartpole", variant, agg.envs_of("cartpole"), "final_return")
        est = None
        if m.n:
            est = agg.memo(("mean", variant, tuple(m.seeds)), lambda m=m: _mean(m.values, agg.reps))
        v = stats.verdict(est, region, m.n, agg.smoke)
        sentence = (
            f"{name(variant)}'s mean final return on CartPole was {fmt(est.value)} "
            f"({_ci(est)}), {m.n} seeds, against the claimed "
            f"{str(region).removeprefix('in ')}: {_why(agg, v, m.n)}."
            if est is not None
            else _untested(claim, "no complete runs")
        )
        rows.append(
            _row(claim, source, "cartpole", statistic, est, region, m.n, v, _note(agg),
                 figure=figure, sentence=sentence)
        )  # fmt: skip
    return rows


def _mean(values: np.ndarray, reps: int) -> Estimate:
    point, ci = stats.interval(values, lambda x: np.array([metrics.aggregate_mean(x)]), reps)
    return Estimate(float(point[0]), float(ci[0, 0]), float(ci[1, 0]))


def claims_table(agg: Aggregation) -> pd.DataFrame:
    pairwise = _pairwise_claims(agg)  # paper order: comparisons, alpha, the ablation, CartPole
    rows = [*_speedup_claims(agg), *pairwise[:4], *_combined_claims(agg), _alpha_claim(agg),
            *pairwise[4:6]]  # fmt: skip
    return pd.DataFrame([*rows, *_cartpole_claims(agg), *pairwise[6:]])
