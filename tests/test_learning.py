"""Learning checks (slow; `make learn-check`, not in CI).

SAC, MBPO and PMAC at the paper profile on InvertedPendulum-v5 (jannerm/mbpo's
inverted-pendulum config: 500 warm-up steps, 250-step epochs, 10 updates per step for the
model-based agents): every seed must reach an average evaluation return of at least 900
(max 1000) at some evaluation within the budget. The threshold is 90% of the maximum; a
broken learner stays near 100 (random policy: 5-30), the plateau every agent passes through
before it learns to stop the cart drifting.

Budgets: 5,000 env steps for MBPO and PMAC (the MBPO paper's InvertedPendulum curve is
near its maximum by then). SAC is the model-free
baseline at its standard one update per env step; at that rate it is still on the ~100
plateau at 5,000 steps (measured: 119, 89, 69 for seeds 0-2) and first reaches 900 at
14,250 / 15,000 / 17,000 steps, so its budget here is 20,000 steps. (SAC with MBPO's 10
updates per step reaches 1000 at 2,000 steps: the learner is not broken, it is
sample-limited.)

Measured (2026-11-22, CPU, one thread per run): MBPO first reaches 900 at 4,500 / 4,250 /
4,750 steps and PMAC at 5,000 / 4,750 / 4,250 (seeds 0-2), so the margin in steps is thin:
the last evaluation is at 5,000. That needs the standardised model targets MBPO/PMAC use on
InvertedPendulum (docs/ambiguities.md #17); with jannerm/mbpo's raw targets
(`model.normalize_targets=false`) MBPO fails seed 1 (152 at 5,000) and PMAC all three
(177, 123, 195). The MBPO paper's own curves start after 5,000 uncounted random steps (#18),
which this budget includes.
"""

import csv
import io
import json

import pytest

THRESHOLD = 900.0
BUDGET = {"sac": 20_000, "mbpo": 5_000, "pmac": 5_000}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("algo", ["sac", "mbpo", "pmac"])
def test_inverted_pendulum_reaches_900_within_budget(tmp_path, run_cli, algo, seed):
    out = tmp_path / f"{algo}{seed}"
    run_cli(
        "train",
        "--algo",
        algo,
        "--env",
        "inverted_pendulum",
        "--seed",
        str(seed),
        "--profile",
        "paper",
        "--set",
        f"total_steps={BUDGET[algo]}",
        "--threads",
        "1",
        "--out",
        str(out),
    )
    rows = list(csv.DictReader(io.StringIO((out / "eval.csv").read_text())))
    curve: dict[int, list[float]] = {}
    for r in rows:
        curve.setdefault(int(r["step"]), []).append(float(r["return"]))
    means = {step: sum(v) / len(v) for step, v in sorted(curve.items())}
    assert max(means) == BUDGET[algo]
    first = next((s for s, m in means.items() if m >= THRESHOLD), None)
    print(f"\n{algo} seed {seed}: first step >= {THRESHOLD}: {first}; curve {means}")
    done = json.loads((out / "done.json").read_text())
    print(f"{algo} seed {seed}: final {done['final_return']:.1f}, wall {done['wall_s']:.0f}s")
    assert first is not None, f"{algo} seed {seed} never reached {THRESHOLD}: {means}"
