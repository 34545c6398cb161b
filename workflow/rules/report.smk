# Statistics, figures and the HTML report (issue 6), from the stored run directories only.
# Uses PROFILE, RUNS and done_files() from the Snakefile; each rule calls the CLI.
# The figure set depends on the data (a figure without data is skipped and the report says
# why), so `figures` outputs a directory and marks its PNGs for `snakemake --report`.


rule aggregate:
    input:
        done_files(),
    output:
        summary=f"results/aggregate/{PROFILE}/summary.json",
        runs=f"results/aggregate/{PROFILE}/runs.csv",
        claims=report(
            f"results/aggregate/{PROFILE}/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
    params:
        profile=PROFILE,
        runs=lambda wildcards: RUNS,
    log:
        f"results/aggregate/{PROFILE}.log",
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench aggregate --profile {params.profile} --runs {params.runs}"
        " --out results/aggregate 2> {log}"


rule figures:
    input:
        rules.aggregate.output.summary,
    output:
        report(
            directory(f"reports/{PROFILE}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        profile=PROFILE,
        runs=lambda wildcards: RUNS,
    log:
        f"reports/{PROFILE}/figures.log",
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench figures --profile {params.profile} --runs {params.runs}"
        " --aggregate results/aggregate --out reports 2> {log}"


rule report:
    input:
        rules.aggregate.output.summary,
        rules.figures.output,
    output:
        report(
            f"reports/{PROFILE}/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
    params:
        profile=PROFILE,
        runs=lambda wildcards: RUNS,
    log:
        f"reports/{PROFILE}/report.log",
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench report --profile {params.profile} --runs {params.runs}"
        " --aggregate results/aggregate --benchmarks results/benchmarks --out reports 2> {log}"
