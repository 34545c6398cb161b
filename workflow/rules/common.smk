# All the workflow's Python: the profile's validation, the paths, the job tables and the
# input functions the rules share. The jobs come from config/experiments.yaml and the
# profile, expanded by harness.job.experiments; rules only wire files to CLI calls.
import json
import os

from algorithms.registry import ALGORITHMS
from harness.job.config import job_profile, validate_profile
from harness.job.experiments import all_jobs, experiment_jobs
from harness.job.train import resolve_run

# One validation, against workflow/schemas/config.schema.yaml: the harness's validator,
# whose message is one line naming the key (it is the one `mbrl-bench train` uses).
validate_profile(config, "profile")

PROFILE = config["profile"]
RUNS = "results/runs"  # the reproduction's run directories: RUNS/PROFILE/variant/env/seedN
CANDIDATES = "results/candidate"  # the regression gate's candidate runs, same layout
BASELINES = "results/baselines/regress"  # the gate's stored baselines, one per profile
AGGREGATE = "results/aggregate"
BENCHMARKS = "results/benchmarks"
LOGS = "results/logs"
REPORTS = "reports"

JOBS = {(j.variant, j.env, str(j.seed)): j for j in all_jobs(config)}
REGRESS_JOBS = {
    (j.variant, j.env, str(j.seed)): j
    for j in experiment_jobs(config, gate=True).get("regress", [])
}

# Every job's hyperparameters resolved now, as `mbrl-bench train` will: an unknown key or a
# bad value in a `train:` block fails the dry run with one line naming it.
_checked = set()
for _job in [*JOBS.values(), *REGRESS_JOBS.values()]:
    if (_job.variant, _job.env) not in _checked:
        _checked.add((_job.variant, _job.env))
        resolve_run(_job.algo, _job.env, job_profile(config, _job.algo, _job.env), dict(_job.overrides))


def job_of(wildcards):
    """The job behind a train rule's wildcards (a variant names one algorithm and one set
    of overrides, so a key found in both tables is the same job)."""
    key = (wildcards.variant, wildcards.env, wildcards.seed)
    return JOBS[key] if key in JOBS else REGRESS_JOBS[key]


def profile_json(wildcards):
    """The job's part of the config Snakemake loaded (`--profile-json` of `mbrl-bench
    train`): jobs follow any --configfile or --config, not config/<profile>.yaml."""
    job = job_of(wildcards)
    return json.dumps(job_profile(config, job.algo, job.env), sort_keys=True)


def checkpoint_every():
    return config.get("checkpoint_every", 0)


def slurm_signal(runtime_min):
    """sbatch's --signal for a train job (SLURM executor only): SIGTERM ahead of the time
    limit - a fifth of it, at most 10 min - so the run can reach an episode end, checkpoint
    and exit 75 before SLURM's own SIGTERM and, KillWait later, SIGKILL."""
    return f"--signal=TERM@{min(600, runtime_min * 60 // 5)}"


def resources_of(wildcards):
    family = ALGORITHMS[job_of(wildcards).algo].family
    return config["resources"].get(family, config["resources"]["default"])


def done_files():
    """Every training job's done.json (a run counts as finished once it exists)."""
    return [f"{j.run_dir(RUNS, PROFILE)}/done.json" for j in JOBS.values()]


def regress_done_files():
    """Every candidate run of the regression gate's `regress` experiment."""
    return [f"{j.run_dir(CANDIDATES, PROFILE)}/done.json" for j in REGRESS_JOBS.values()]
