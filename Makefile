# The two commands of the README: `make demo` and `make test`; `make lint` runs
# the pre-commit hooks over the whole tree (CI runs it after the tests).
# All create or reuse the in-repo virtualenv (.venv) through tools/setup_env.sh.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean

setup:
	bash tools/setup_env.sh

demo: setup
	$(PY) tools/demo.py

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

# The hooks are `repo: local` / `language: system`: they run the venv's tools.
lint: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

bench: setup
	$(PY) benchmarks/bench_dynopool.py

clean:
	rm -rf $(VENV) mmdynopool/.mim *.egg-info .pytest_cache .hypothesis
