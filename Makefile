# The two commands of the README: `make demo` and `make test`.
# Both create or reuse the in-repo virtualenv (.venv) through tools/setup_env.sh.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

setup:
	bash tools/setup_env.sh

demo: setup
	$(PY) tools/demo.py

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/bench_dynopool.py

clean:
	rm -rf $(VENV) mmdynopool/.mim *.egg-info .pytest_cache .hypothesis
