"""FIXTURES, not results: synthetic run directories in the run-directory contract
(docs/pipeline.md "The run directory") with known returns and errors, so the aggregation,
figure, report, loader and regression-gate tests are fast, exact and need no training.
`write_run_dir` is the one writer of run directories in the tests."""

from __future__ import annotations

import json
from pathlib import Path

from harness.job.experiments import Job, all_jobs

TOTAL, EVAL_EVERY = 10_000, 1_000
STEPS = list(range(EVAL_EVERY, TOTAL + 1, EVAL_EVERY))


def _csv(path: Path, header: str, rows: list[tuple]) -> None:
    path.write_text("\n".join([header, *(",".join(map(str, r)) for r in rows)]) + "\n")


def write_run_dir(
    run_dir: Path,
    config: dict,
    *,
    provenance: dict | None = None,
    tables: dict[str, tuple[str, list[tuple]]] | None = None,
    done: dict | None = None,
) -> Path:
    """A run directory as `mbrl-bench train` writes it: config.json, provenance.json,
    one CSV per table (name -> (header, rows)) and, for a finished run, done.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    if provenance is not None:
        (run_dir / "provenance.json").write_text(json.dumps(provenance))
    for name, (header, rows) in (tables or {}).items():
        _csv(run_dir / f"{name}.csv", header, rows)
    if done is not None:
        (run_dir / "done.json").write_text(json.dumps(done))
    return run_dir


MBPO_FAMILY = ("mbpo", "pmac", "pmac_model_only", "pmac_rollout_only")


def length_at(step: int, reach: float = 1.0) -> int:
    """The fixture's mean episode length at an evaluation step: 50 rising to 100 with the
    return."""
    return int(50 + 50 * min(1.0, step / (reach * TOTAL)))


def write_run(run_dir: Path, job: Job, profile: str, final: float, *, reach: float = 1.0,
              local_error: float = 0.01, compounding: float = 1.0, status: str = "ok",
              done: bool = True, reward_error: float = 1.0, critic: bool = True,
              model_target: bool = True, q_bias: float = 5.0, budget: int = TOTAL,
              eval_episodes: int = 2) -> None:  # fmt: skip
    """A run whose mean eval return rises linearly to `final` at `reach` x TOTAL steps,
    evaluated every EVAL_EVERY steps up to `budget`. MBPO-family runs write critic.csv
    (`q_bias` constant, temperature falling) and a train.csv `alpha` column unless
    `critic=False` (an older run); model.csv holds state and reward rows (`target`), or
    state rows without a `target` column with `model_target=False` (an older run)."""
    hp = {"total_steps": budget, "eval_every": EVAL_EVERY, "eval_episodes": eval_episodes}
    steps = [s for s in STEPS if s <= budget]
    if job.algo == "dyna_q":
        hp["horizon"] = dict(job.overrides).get("horizon", 3)
    if "rollout_schedule" in dict(job.overrides):
        hp["rollout_schedule"] = list(dict(job.overrides)["rollout_schedule"])
    if job.algo == "pmac":
        alpha = dict(job.overrides).get("weighting.age.alpha", 0.9)
        hp["weighting"] = {"scheme": "age", "age": {"alpha": alpha}}
    scheme = dict(job.overrides).get("weighting.scheme")
    if scheme is not None:
        hp["weighting"] = {"scheme": scheme}
    own = [scheme] if scheme is not None else []  # visitation.csv's source of the scheme
    config = {
        "algo": job.algo,
        "variant": job.variant,
        "env": job.env,
        "seed": job.seed,
        "profile": profile,
        "profile_label": f"FIXTURE {profile}",
        "hyperparameters": hp,
    }
    prov = {
        "git_commit": "f1x7ure0000",
        "git_dirty": True,
        "python": "3.11.7",
        "cpu": "Fixture CPU 9000",
        "cpu_capability": "AVX512",
        "packages": {"torch": "2.13.0+cpu", "gymnasium": "1.4.0", "mujoco": "4.0.0"},
    }
    curve = [final * min(1.0, s / (reach * TOTAL)) for s in steps]
    state_rows = [
        (s, sp, local_error * (1 if sp == "local" else 0.1))
        for s in steps
        for sp in ("local", "global")
    ]
    tables = {
        "eval": (
            "step,episode,return,length",
            [
                (s, e, r + (0.5 if e else -0.5), length_at(s, reach) + (1 if e else -1))
                for s, r in zip(steps, curve, strict=True)
                for e in (0, 1)
            ],
        ),
        "model": (
            (
                "step,split,target,error",
                [
                    *((s, sp, "state", err) for s, sp, err in state_rows),
                    *((s, sp, "reward", reward_error) for s in steps for sp in ("local", "global")),
                ],
            )
            if model_target
            else ("step,split,error", state_rows)
        ),
        "compounding": (
            "step,horizon,error",
            [(s, h, compounding * h) for s in steps for h in (1, 2, 3)],
        ),
        "coadaptation": (
            "step,horizon,model_return,real_return",
            [(s, h, 1.0 * h, 0.8 * h) for s in steps for h in (1, 2, 3)],
        ),
        "visitation": (
            "step,source,q_quantile,q_value",
            [
                (s, src, q, q + k)
                for s in steps
                for k, src in enumerate(("policy", "mixture", "uniform", *own))
                for q in (0.05, 0.5, 0.95)
            ],
        ),
        "train": ("step,wall_s,rollout_length", [(s, 0.1, 2.5) for s in steps]),
    }
    family = job.algo in MBPO_FAMILY
    if family and critic:
        tables["critic"] = (
            "step,states,q_mean,return_mean,q_bias,alpha,entropy_bonus",
            [(s, 500, 20.0 + q_bias, 20.0, q_bias, 0.2 / (1 + i), 0.5 / (1 + i))
             for i, s in enumerate(steps)],
        )  # fmt: skip
    if family:
        tables["train"] = (
            "step,wall_s,rollout_length,alpha",
            [(s, 0.1, 2.5, 0.2 / (1 + i)) for i, s in enumerate(steps)],
        )
    summary = {
        "status": status,
        "final_return": curve[-1],
        "auc": sum(curve) / len(curve),
        "env_steps": budget,
        "wall_s": 12.5,
    }
    write_run_dir(run_dir, config, provenance=prov, tables=tables, done=summary if done else None)


# Mean final return per variant (seed adds +seed): PMAC clearly above MBPO, PETS tied
# with PMAC, Dyna-Q above 195, DQN far above the CartPole recipe's "about 150"; PER, RECALL
# and MaPER clearly below PMAC, PDML just below it and slower (it reaches its final return
# at the end, PMAC at 0.4 x the budget).
FINAL = {"pmac": 100.0, "mbpo": 60.0, "pets": 101.0, "sac": 80.0, "dyna_q": 200.0,
         "dqn": 300.0, "pmac_model_only": 90.0, "pmac_rollout_only": 61.0, "pdml": 99.0,
         "mbpo_per": 70.0, "mbpo_recall": 50.0, "mbpo_maper": 65.0}  # fmt: skip


def build(runs_root: Path, profile: str, *, skip=(), failed=(), incomplete=(), budgets=None,
          **run_kw) -> list[Job]:  # fmt: skip
    """Write a run for every job of the profile except `skip` keys (variant, env, seed);
    `budgets`: variant -> step budget (default TOTAL); `run_kw` goes to every `write_run`.
    PMAC's reward error is far above the others' and its state error below them, so a
    reader mixing model.csv's targets gets the one-step claim wrong."""
    jobs = all_jobs(profile)
    for job in jobs:
        key = (job.variant, job.env, job.seed)
        if key in skip:
            continue
        base = FINAL.get(job.variant, 70.0)
        pets_seed = (1.5, -1.5, 0.0, 3.0, -3.0)[job.seed % 5]  # interleaves PMAC's seeds
        final = base + (pets_seed if job.variant == "pets" else job.seed)
        write_run(
            job.run_dir(runs_root, profile), job, profile, final,
            reach=0.4 if job.variant == "pmac" else 1.0,
            local_error=0.01 if job.variant == "pmac" else 0.05,
            compounding=2.0 if job.variant == "pmac" else 1.0,  # PMAC worse: a clear loss
            status="failed: non-finite loss" if key in failed else "ok",
            done=key not in incomplete,
            reward_error=5.0 if job.variant == "pmac" else 0.001,
            budget=(budgets or {}).get(job.variant, TOTAL),
            **run_kw,
        )  # fmt: skip
    return jobs
