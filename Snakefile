# mbrl-bench pipeline: `snakemake --cores 8` reproduces the paper profile; choose another
# profile with `--configfile config/quick.yaml` or `config/smoke.yaml`. Run it from the
# project's virtualenv (`make install`; the rules call the `mbrl-bench` CLI).
# Stages: train (workflow/rules/train.smk) -> aggregate, figures, report (report.smk);
# the regression gate (regress.smk) runs only as the `regress` target. docs/pipeline.md.
from snakemake.utils import min_version

min_version("9.0")


# The default profile is the full reproduction; `--configfile` replaces it (a configfile
# directive would be merged key by key with the command line's, mixing two profiles).
if not config:

    configfile: f"{workflow.basedir}/config/paper.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/regress.smk"


rule all:
    default_target: True
    input:
        f"{REPORTS}/{PROFILE}/index.html",


rule runs:
    input:
        done_files(),


rule regress:
    input:
        rules.regress_check.output,
