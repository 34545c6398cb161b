# mbrl-bench pipeline. Placeholder until the pipeline issue: one smoke training job per
# algorithm, each calling the CLI (no logic in rules).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/smoke.yaml"


include: "workflow/rules/train.smk"


rule all:
    input:
        expand(
            "results/runs/{profile}/{algo}/inverted_pendulum/seed0/done.json",
            profile=config["profile"],
            algo=["sac", "mbpo", "pmac", "pmac_model_only", "pmac_rollout_only"],
        ),
