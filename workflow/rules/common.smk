# What the rules and target rules share: the profile's files and the job behind a set of
# wildcards with its resources.


def job_of(wildcards):
    return JOBS[(wildcards.variant, wildcards.env, wildcards.seed)]


def resources_of(wildcards):
    family = ALGORITHMS[job_of(wildcards).algo].family
    return config["resources"].get(family, config["resources"]["default"])


def done_files():
    """Every training job's done.json (a run counts as finished once it exists)."""
    return [f"{j.run_dir(RUNS, PROFILE)}/done.json" for j in JOBS.values()]


def benchmark_files():
    """Every training job's Snakemake benchmark (wall time, memory, CPU time)."""
    return [f"results/benchmarks/{PROFILE}/{v}/{e}/seed{s}.tsv" for v, e, s in JOBS]
