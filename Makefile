# The README's commands. `make demo` and `make test` each set up the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rccr-installed

.PHONY: setup demo dashboard test lint lab notebooks bench bench-uda mutate clean

setup: $(STAMP)

# Re-installs only when the package definition or the pinned versions change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all]"
	touch $(STAMP)

# Trains the toy demo, then serves the dashboard over runs/ until Ctrl-C.
demo: setup
	$(BIN)/rccr demo --data data/toy --runs runs
	$(BIN)/rccr dashboard --runs runs

dashboard: setup
	$(BIN)/rccr dashboard --runs runs

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check rccr tests data_scripts benchmarks dashboard
	$(BIN)/ruff format --check rccr tests data_scripts benchmarks dashboard
	$(BIN)/mypy

# JupyterLab in notebooks/ with the kernel "Python (rccr)", which is this venv's Python.
lab: setup
	$(BIN)/python -m ipykernel install --sys-prefix --name rccr --display-name "Python (rccr)"
	$(BIN)/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Re-execute every notebook in place, full length on the toy city (data/toy), retraining
# the tutorial runs from scratch (runs/tutorial), so the saved outputs come from this code.
notebooks: setup
	rm -rf runs/tutorial
	$(BIN)/python tests/notebooks/runner.py notebooks/*.ipynb

bench: setup
	$(BIN)/python benchmarks/data_pipeline.py
	$(BIN)/python benchmarks/bench_region_loss.py
	$(BIN)/python benchmarks/bench_step.py
	$(BIN)/python benchmarks/bench_dashboard.py

# The toy-city accuracy benchmark (8 methods x 3 seeds; resumes; README "Results").
bench-uda: setup
	nice -n 10 $(BIN)/python benchmarks/uda_benchmark.py --preset toy

# Mutation testing of the core modules with mutmut (settings in pyproject.toml, how to read
# the survivors in docs/testing.md). Slow, so not part of `make test`; it resumes where it
# stopped. The score and the accepted survivors are in benchmarks/results/mutation.md.
mutate: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 $(BIN)/mutmut run
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants
