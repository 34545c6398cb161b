# Two commands a newcomer needs: `make reproduce` and `make test` (both install first).
PY      := .venv/bin/python
STAMP   := .venv/.installed
THREADS ?= 2

.PHONY: install reproduce test learn-check bench lint clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Smoke training run of every algorithm (tiny budgets, labelled `smoke` in every output).
reproduce: install
	@for algo in sac mbpo pmac pmac_model_only pmac_rollout_only; do \
	  .venv/bin/mbrl-bench train --algo $$algo --env inverted_pendulum --seed 0 \
	    --profile smoke --threads $(THREADS) \
	    --out results/runs/smoke/$$algo/inverted_pendulum/seed0 || exit $$?; \
	done
	@echo "smoke runs written under results/runs/smoke/ (eval.csv, train.csv, done.json per run)"

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
