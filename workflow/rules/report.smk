# Statistics, figures and the HTML report, from the stored run directories only.
# Uses the paths and done_files() of common.smk; each rule calls the CLI.
# The figure set depends on the data (a figure without data is skipped and the report says
# why), so `figures` outputs a directory and marks its PNGs for `snakemake --report`.


rule aggregate:
    input:
        done_files(),
    output:
        summary=f"{AGGREGATE}/{PROFILE}/summary.json",
        runs=f"{AGGREGATE}/{PROFILE}/runs.csv",
        claims=report(
            f"{AGGREGATE}/{PROFILE}/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
    params:
        profile=PROFILE,
        runs=lambda wildcards: RUNS,
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output.summary)),
    log:
        f"{AGGREGATE}/{PROFILE}.log",
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench aggregate --profile {params.profile} --runs {params.runs}"
        " --out {params.out} 2> {log}"


rule figures:
    input:
        rules.aggregate.output.summary,
    output:
        report(
            directory(f"{REPORTS}/{PROFILE}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        profile=PROFILE,
        runs=lambda wildcards: RUNS,
        aggregate=lambda wildcards, input: os.path.dirname(os.path.dirname(input[0])),
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),
    log:
        f"{REPORTS}/{PROFILE}/figures.log",
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench figures --profile {params.profile} --runs {params.runs}"
        " --aggregate {params.aggregate} --out {params.out} 2> {log}"


rule report:
    input:
        rules.aggregate.output.summary,
        rules.figures.output,
    output:
        report(
            f"{REPORTS}/{PROFILE}/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
    params:
        profile=PROFILE,
        runs=lambda wildcards: RUNS,
        aggregate=lambda wildcards, input: os.path.dirname(os.path.dirname(input[0])),
        benchmarks=BENCHMARKS,
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),
    log:
        f"{REPORTS}/{PROFILE}/report.log",
    conda:
        "../envs/mbrl-bench.yaml"
    shell:
        "mbrl-bench report --profile {params.profile} --runs {params.runs}"
        " --aggregate {params.aggregate} --benchmarks {params.benchmarks}"
        " --out {params.out} 2> {log}"
