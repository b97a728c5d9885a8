# The two commands of the README. Each builds .venv when it is missing or older than
# pyproject.toml, so on a fresh machine `make run` or `make test` is all there is to type.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint clean bench asv

$(STAMP): pyproject.toml examples/hello_plugin/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' -e examples/hello_plugin
	touch $(STAMP)

# A 3-node cluster on 127.0.0.1:6379-6381, replication factor 2, data under ./data/node-N,
# each node's dashboard on 8080-8082; Ctrl-C stops every node gracefully.
run: $(STAMP)
	$(BIN)/distcache cluster up --nodes 3 --base-port 6379 --replication-factor 2 \
		--dashboard-base-port 8080

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy distcache_core plugins
# Every asv benchmark once, in this venv: a broken benchmark fails here. asv rewrites its
# results folder even on a dry run, so this pass uses a copy of the config that points at an
# ignored folder and the committed history stays untouched.
	$(BIN)/python -c "import json; c = json.load(open('asv_bench/asv.conf.json')); \
		c['results_dir'] = '.quick-results'; c['html_dir'] = '.quick-html'; \
		json.dump(c, open('asv_bench/.quick.conf.json', 'w'))"
	cd asv_bench && ../$(BIN)/asv machine --yes >/dev/null \
		&& ../$(BIN)/asv run --config .quick.conf.json --python=same --quick --dry-run \
		--show-stderr
# redis-server and redis-cli for the tests that compare with Redis (installed when missing).
	@sh tests/ensure_redis.sh
# Debian's chromium for the dashboard's browser test (installed when missing).
	@sh tests/ensure_chromium.sh
# The slowest tests are listed at the end: the suite must stay under 10 minutes in CI.
	$(BIN)/python -m pytest -q --durations=15

# DistCache against redis-server, side by side (bench/README.md); e.g. BENCH_ARGS=--quick.
bench: $(STAMP)
	$(BIN)/python bench/run_bench.py $(BENCH_ARGS)

# Benchmark HEAD with asv and add it to the history in asv_bench/results (asv_bench/README.md).
asv: $(STAMP)
	cd asv_bench && ../$(BIN)/asv machine --yes >/dev/null \
		&& ../$(BIN)/asv run HEAD^! && ../$(BIN)/asv publish
	@echo "asv: report in asv_bench/html/index.html (view: cd asv_bench && ../$(BIN)/asv preview)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy distcache_core plugins

clean:
	rm -rf $(VENV) data
