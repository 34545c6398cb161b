# Regression gate (issue 7, docs/regression.md). Target: regress_check (the Snakefile's
# `regress`). Trains the candidate - the code in the working tree - at the profile's
# `regress` experiment into its own runs root, results/candidate/{profile}/, then compares
# it with the stored baseline results/baselines/regress/{profile}/ (`mbrl-bench check`,
# exit 1 on a regression). Snakemake does not see code changes: `make regress` empties the
# candidate root first, so that every call retrains (by hand: --forcerun regress_train).
# The check's Markdown and JUnit reports are logs, so a failing check keeps them.
# Uses PROFILE from the Snakefile.
from harness.job.experiments import experiment_jobs

REGRESS_JOBS = {
    (j.variant, j.env, str(j.seed)): j
    for j in experiment_jobs(PROFILE, gate=True).get("regress", [])
}
REGRESS_DONE = [
    f"results/candidate/{PROFILE}/{v}/{e}/seed{s}/done.json" for v, e, s in REGRESS_JOBS
]


rule regress_train:
    output:
        "results/candidate/{profile}/{variant}/{env}/seed{seed}/done.json",
    log:
        "results/candidate/{profile}/{variant}/{env}/seed{seed}.log",
    wildcard_constraints:
        seed=r"\d+",
    params:
        algo=lambda w: REGRESS_JOBS[(w.variant, w.env, w.seed)].algo,
        sets=lambda w: REGRESS_JOBS[(w.variant, w.env, w.seed)].set_args(),
        out=lambda w, output: os.path.dirname(output[0]),
    threads: 1
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench train --algo {params.algo} --env {wildcards.env} --seed {wildcards.seed}"
        " --profile {wildcards.profile} --variant {wildcards.variant} {params.sets:q}"
        " --threads {threads} --out {params.out} 2> {log}"


rule regress_check:
    input:
        runs=REGRESS_DONE,
        baseline=f"results/baselines/regress/{PROFILE}/provenance.json",
    output:
        touch(f"reports/regress/{PROFILE}/passed"),
    log:
        markdown=f"reports/regress/{PROFILE}/check.md",
        junit=f"reports/regress/{PROFILE}/check.xml",
    params:
        baseline=lambda w, input: os.path.dirname(input.baseline),
        candidate=lambda w: f"results/candidate/{PROFILE}",
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench check --baseline {params.baseline} --candidate {params.candidate}"
        " --markdown {log.markdown} --junit {log.junit} > /dev/null"
