# The two commands of the README. Each builds .venv when it is missing or older than
# pyproject.toml, so on a fresh machine `make run` or `make test` is all there is to type.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint clean bench

$(STAMP): pyproject.toml examples/hello_plugin/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' -e examples/hello_plugin
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/distcache serve --host 127.0.0.1 --port 6379

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# DistCache against redis-server, side by side (bench/README.md); e.g. BENCH_ARGS=--quick.
bench: $(STAMP)
	$(BIN)/python bench/run_bench.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data
