# Two commands a newcomer needs: `make reproduce` and `make test` (both install first).
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: install reproduce reference-report test learn-check bench bench-save regress ci-regress slurm-check lint clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The smoke pipeline: every experiment at tiny budgets (labelled SMOKE in every output),
# through Snakemake exactly as a full reproduction runs (`snakemake --cores 8` = paper).
reproduce: install
	PATH="$(CURDIR)/.venv/bin:$$PATH" snakemake --cores all --configfile config/smoke.yaml
	@echo "runs: results/runs/smoke/   (one directory per variant/env/seed)"

# The committed reference set (docs/results.md): statistics, figures and the report from the
# stored runs in results/reference/quick/, training nothing -> reports/reference/quick/index.html.
REF := --profile quick --runs results/reference
reference-report: install
	.venv/bin/mbrl-bench aggregate $(REF) --envs hopper --out results/aggregate/reference
	.venv/bin/mbrl-bench figures $(REF) --aggregate results/aggregate/reference --out reports/reference
	.venv/bin/mbrl-bench report $(REF) --aggregate results/aggregate/reference --out reports/reference
	@echo "report: reports/reference/quick/index.html"

lint: install
	.venv/bin/ruff check algorithms harness tests

test: install lint
	$(PY) -m pytest -q -m "not slow and not benchmark"

learn-check: install
	$(PY) -m pytest -q -m slow -s

# Speed: every benchmark case against the stored baseline of this machine kind,
# results/baselines/bench/<CPU model>-<torch CPU capability>/ (fails when a median is more than
# 50% slower: the machine is shared and noisy; docs/regression.md "Speed baseline"); without one
# it times the cases and says so. The capability (AVX2, AVX512, ...) picks torch's vectorised
# kernels, so one CPU model name can time differently on two hosts. One thread, as the pipeline
# runs its jobs. `make bench-save` stores this kind's baseline after a deliberate change.
BENCH_CPU := $(shell grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 \
	  | sed -E 's/^ +//; s/[^A-Za-z0-9]+/-/g; s/-$$//')
# Recursive (=): torch is imported only when a bench target expands it, after `install`.
BENCH_CAP = $(shell $(PY) -c 'import torch; print(torch.backends.cpu.get_cpu_capability())' 2>/dev/null)
BENCH_DIR = results/baselines/bench/$(or $(BENCH_CPU),unknown-cpu)-$(or $(BENCH_CAP),unknown)
BENCH = OMP_NUM_THREADS=1 $(PY) -m pytest -q -m benchmark --benchmark-enable --benchmark-only \
	  --benchmark-storage=file://$(BENCH_DIR) \
	  --benchmark-columns=min,median,mean,stddev,rounds
bench: install
	@if [ -d "$(BENCH_DIR)" ]; then \
	  echo "speed baseline: $(BENCH_DIR)"; \
	  $(BENCH) --benchmark-compare --benchmark-compare-fail=median:50%; \
	else \
	  echo "no speed baseline for this machine kind ($(BENCH_DIR)); timing without a comparison (make bench-save stores one)"; \
	  $(BENCH); \
	fi

bench-save: install
	$(BENCH) --benchmark-save=baseline

# Regression gate: retrain the `regress` experiment from the working tree into
# results/candidate/ and compare with results/baselines/regress/$(REGRESS_PROFILE)/ (exit 1 on a
# regression; report in reports/regress/$(REGRESS_PROFILE)/check.md).
REGRESS_PROFILE ?= smoke
regress: install
	rm -rf results/candidate/$(REGRESS_PROFILE) reports/regress/$(REGRESS_PROFILE)
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/snakemake regress_check --cores all \
	  --configfile config/$(REGRESS_PROFILE).yaml; \
	  status=$$?; cat reports/regress/$(REGRESS_PROFILE)/check.md 2>/dev/null; exit $$status

# CI: the smoke pipeline's runs (results/runs/smoke) against the committed smoke baseline;
# byte-identical files when the baseline was recorded on this CPU model with these library
# versions, else the statistical check. The report's first lines say which and why.
ci-regress: install
	.venv/bin/mbrl-bench check --auto --baseline results/baselines/smoke \
	  --candidate results/runs/smoke \
	  --markdown reports/regress/ci-smoke.md --junit reports/regress/ci-smoke.xml

# The SLURM path for real: a single-node cluster on this machine (root; Debian's slurmctld,
# slurmd, munge), the smoke pipeline through workflow/profiles/slurm with the CartPole jobs
# given a too-short time limit (stopped, retried, resumed), files compared with the local
# pipeline's (`make reproduce`). scripts/slurm-local.sh stop shuts the cluster down.
slurm-check: reproduce
	scripts/slurm-check.sh

clean:
	rm -rf .venv .pytest_cache .ruff_cache
