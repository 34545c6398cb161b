# One rule instance per training run; its algorithm and overrides come from the job table
# (common.smk), its threads and resources from the profile's `resources:` block.
# The job's configuration is the config Snakemake loaded (`--profile-json`, common.smk), and
# it checkpoints every `checkpoint_every` steps; on SIGTERM (a cluster's time limit) it
# checkpoints at the next episode end and exits 75, so a retry resumes. The log is appended
# to, but Snakemake deletes it before each attempt: it shows the last attempt (where it
# resumed); a cluster's per-attempt logs show the stops. `exec`: the job's shell
# becomes the run, so a cluster's SIGTERM reaches a process that handles it; a shell in
# between dies of it at once, its orphaned run finishes or checkpoints after Snakemake has
# counted the attempt failed, and the retry collides with it (make slurm-check found this).
# Only done.json is declared: the run directory's checkpoint.pt is not an output, so
# `--rerun-incomplete` keeps it and the rerun job resumes from it.


rule train:
    output:
        f"{RUNS}/{PROFILE}/{{variant}}/{{env}}/seed{{seed}}/done.json",
    log:
        f"{LOGS}/{PROFILE}/{{variant}}/{{env}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/{PROFILE}/{{variant}}/{{env}}/seed{{seed}}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    threads: lambda wildcards: resources_of(wildcards)["threads"]
    resources:
        mem_mb=lambda wildcards: resources_of(wildcards)["mem_mb"],
        runtime=lambda wildcards: resources_of(wildcards)["runtime"],
        slurm_extra=lambda wildcards: slurm_signal(resources_of(wildcards)["runtime"]),
    params:
        algo=lambda wildcards: job_of(wildcards).algo,
        sets=lambda wildcards: job_of(wildcards).set_args(),
        out=lambda wildcards, output: os.path.dirname(output[0]),
        profile=PROFILE,
        profile_json=profile_json,
        checkpoint_every=checkpoint_every(),
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "exec mbrl-bench train --algo {params.algo} --env {wildcards.env} --seed {wildcards.seed}"
        " --profile {params.profile} --profile-json {params.profile_json:q}"
        " --checkpoint-every {params.checkpoint_every}"
        " --variant {wildcards.variant} {params.sets:q}"
        " --threads {threads} --out {params.out} 2>> {log}"
