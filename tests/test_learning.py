"""Learning checks (slow; `make learn-check`, not in CI).

SAC, MBPO and PMAC at the paper profile on InvertedPendulum-v5 (budget 5,000 env steps,
MBPO's inverted-pendulum config): every seed must reach an average evaluation return of at
least 900 (max 1000) at some evaluation within the budget. The threshold is 90% of the
maximum; a broken learner stays below ~100 (random policy: ~5-30).
"""

import csv
import io
import json

import pytest

THRESHOLD = 900.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("algo", ["sac", "mbpo", "pmac"])
def test_inverted_pendulum_reaches_900_within_5000_steps(tmp_path, run_cli, algo, seed):
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
    assert max(means) <= 5000
    first = next((s for s, m in means.items() if m >= THRESHOLD), None)
    print(f"\n{algo} seed {seed}: first step >= {THRESHOLD}: {first}; curve {means}")
    done = json.loads((out / "done.json").read_text())
    print(f"{algo} seed {seed}: final {done['final_return']:.1f}, wall {done['wall_s']:.0f}s")
    assert first is not None, f"{algo} seed {seed} never reached {THRESHOLD}: {means}"
