# mbrl-bench pipeline: `snakemake --cores 8` reproduces the paper profile; choose another
# profile with `--configfile config/quick.yaml` or `config/smoke.yaml`. Run it from the
# project's virtualenv (`make install`; the rules call the `mbrl-bench` CLI).
# Rules hold no logic: they wire files to CLI calls; the experiments, variants and their
# jobs come from config/experiments.yaml and the profile, expanded by harness.job.experiments.
import os

from snakemake.utils import min_version, validate

from algorithms.registry import ALGORITHMS
from harness.job.config import validate_profile
from harness.job.experiments import all_jobs

min_version("9.0")


# The default profile is the full reproduction; `--configfile` replaces it (a configfile
# directive would be merged key by key with the command line's, mixing two profiles).
if not config:

    configfile: os.path.join(workflow.basedir, "config", "paper.yaml")



# Our validator first: its message is one line naming the key (same schema as Snakemake's).
validate_profile(config, "profile")
validate(config, "workflow/schemas/config.schema.yaml")

PROFILE = config["profile"]
RUNS = "results/runs"
JOBS = {(j.variant, j.env, str(j.seed)): j for j in all_jobs(config)}


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/regress.smk"


rule all:
    default_target: True
    input:
        f"reports/{PROFILE}/index.html",


rule runs:
    input:
        done_files(),


rule regress:
    input:
        rules.regress_check.output,
