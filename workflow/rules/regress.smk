# Regression gate (issue 7, docs/regression.md). Target: regress_check (the Snakefile's
# `regress`). Trains the candidate - the code in the working tree - at the profile's
# `regress` experiment into its own runs root, results/candidate/{profile}/, then compares
# it with the stored baseline results/baselines/{profile}/ (`mbrl-bench check`, exit 1 on a
# regression). Snakemake does not see code changes: `make regress` empties the candidate
# root first, so that every call retrains (by hand: --forcerun regress_train).
# The check's Markdown and JUnit reports are logs, so a failing check keeps them.
# Uses PROFILE from the Snakefile.
import shlex
from pathlib import Path

from harness.experiments import experiment_jobs

CANDIDATE = "results/candidate"
REGRESS_JOBS = {(j.variant, j.env, j.seed): j for j in experiment_jobs(PROFILE).get("regress", [])}


def regress_done_files():
    return [str(j.run_dir(Path(CANDIDATE), PROFILE) / "done.json") for j in REGRESS_JOBS.values()]


def regress_job(wildcards):
    return REGRESS_JOBS[(wildcards.variant, wildcards.env, int(wildcards.seed))]


rule regress_train:
    output:
        CANDIDATE + "/{profile}/{variant}/{env}/seed{seed}/done.json",
    log:
        CANDIDATE + "/{profile}/{variant}/{env}/seed{seed}.log",
    params:
        algo=lambda w: regress_job(w).algo,
        sets=lambda w: " ".join(shlex.quote(a) for a in regress_job(w).set_args()),
        out=lambda w, output: str(Path(output[0]).parent),
    threads: 1
    shell:
        "mbrl-bench train --algo {params.algo} --env {wildcards.env} --seed {wildcards.seed}"
        " --profile {wildcards.profile} --variant {wildcards.variant} {params.sets}"
        " --threads {threads} --out {params.out} 2> {log}"


rule regress_check:
    input:
        runs=regress_done_files(),
        baseline=f"results/baselines/{PROFILE}/provenance.json",
    output:
        touch(f"reports/regress/{PROFILE}/passed"),
    log:
        markdown=f"reports/regress/{PROFILE}/check.md",
        junit=f"reports/regress/{PROFILE}/check.xml",
    params:
        baseline=f"results/baselines/{PROFILE}",
        candidate=f"{CANDIDATE}/{PROFILE}",
    shell:
        "mbrl-bench check --baseline {params.baseline} --candidate {params.candidate}"
        " --markdown {log.markdown} --junit {log.junit} > /dev/null"
