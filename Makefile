# Two commands a newcomer needs: `make reproduce` and `make test` (both install first).
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: install reproduce test learn-check bench lint clean

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

lint: install
	.venv/bin/ruff check algorithms harness tests

test: install lint
	$(PY) -m pytest -q -m "not slow and not benchmark"

learn-check: install
	$(PY) -m pytest -q -m slow -s

bench: install
	$(PY) -m pytest -q -m benchmark --benchmark-enable --benchmark-only \
	  --benchmark-autosave --benchmark-columns=min,median,mean,stddev,rounds

clean:
	rm -rf .venv .pytest_cache .ruff_cache
