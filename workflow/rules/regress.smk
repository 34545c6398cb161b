# Regression gate (docs/regression.md). Target: regress_check (the Snakefile's `regress`).
# Trains the candidate - the code in the working tree - at the profile's `regress`
# experiment into its own runs root, CANDIDATES/{profile}/, then compares it with the
# stored baseline BASELINES/{profile}/ (`mbrl-bench check`, exit 1 on a regression).
# Snakemake does not see code changes: `make regress` empties the candidate root first, so
# that every call retrains (by hand: --forcerun regress_train). The check's Markdown and
# JUnit reports are logs, so a failing check keeps them.


use rule train as regress_train with:
    output:
        f"{CANDIDATES}/{PROFILE}/{{variant}}/{{env}}/seed{{seed}}/done.json",
    log:
        f"{CANDIDATES}/{PROFILE}/{{variant}}/{{env}}/seed{{seed}}.log",
    benchmark:
        f"{CANDIDATES}/{PROFILE}/{{variant}}/{{env}}/seed{{seed}}.tsv"
    threads: 1


rule regress_check:
    input:
        runs=regress_done_files(),
        baseline=f"{BASELINES}/{PROFILE}/provenance.json",
    output:
        touch(f"{REPORTS}/regress/{PROFILE}/passed"),
    log:
        markdown=f"{REPORTS}/regress/{PROFILE}/check.md",
        junit=f"{REPORTS}/regress/{PROFILE}/check.xml",
    params:
        baseline=lambda wildcards, input: os.path.dirname(input.baseline),
        candidate=lambda wildcards: f"{CANDIDATES}/{PROFILE}",
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench check --baseline {params.baseline} --candidate {params.candidate}"
        " --markdown {log.markdown} --junit {log.junit} > /dev/null"
