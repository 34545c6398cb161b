rule train:
    output:
        "results/runs/{profile}/{algo}/{env}/seed{seed}/done.json",
    log:
        "results/runs/{profile}/{algo}/{env}/seed{seed}.log",
    threads: 2
    shell:
        "mbrl-bench train --algo {wildcards.algo} --env {wildcards.env} --seed {wildcards.seed}"
        " --profile {wildcards.profile} --threads {threads}"
        " --out results/runs/{wildcards.profile}/{wildcards.algo}/{wildcards.env}/seed{wildcards.seed}"
        " 2> {log}"
