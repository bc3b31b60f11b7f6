# tokencache — every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
DIFF_SEQUENCES ?= 2000
BUILD := $(CURDIR)/target/tokencache-test
PREFIX ?= /usr/local

.PHONY: help demo test test-rust test-differential test-c test-python bench-python bench-stores-python fuzz-smoke lint bench fmt header install bench-c

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

demo: ## Run the main job end to end: populate, save, reload, look up
	$(CARGO) run --quiet --release -p tokencache --example demo

test: lint test-rust test-stores test-differential test-c test-python fuzz-smoke test-compat test-cli ## Run every test (installs what it needs)
	@echo "make test: all suites passed"

lint: ## rustfmt check, clippy with warnings as errors, docs
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet

test-rust: ## Unit, API, vector, property and stress tests
	$(CARGO) test --workspace --quiet

test-stores: ## SQLite, Redis (real redis-server and cluster on 127.0.0.1), tiered and encrypted stores
	scripts/redis-server.sh run $(CARGO) test --quiet -p tokencache --test 'stores_*'

test-differential: ## Random event sequences through real msal and through us, compared
	mkdir -p $(BUILD)
	PY=$$(scripts/venv.sh) && $$PY tests/differential/msal_oracle.py --seed-start 1 --count $(DIFF_SEQUENCES) --out $(BUILD)/msal_ops.jsonl
	TOKENCACHE_DIFF_OPS=$(BUILD)/msal_ops.jsonl TOKENCACHE_DIFF_MIN=$(DIFF_SEQUENCES) \
		$(CARGO) test --quiet -p tokencache --test differential -- --nocapture

test-c: ## The C ABI: header check, C and C++ tests, sanitizers, valgrind, examples
	BUILD=$(BUILD) scripts/test-c.sh

header: ## Regenerate include/tokencache.h with the pinned cbindgen
	scripts/cbindgen.sh include/tokencache.h

install: ## Install libtokencache, tokencache.h, tokencache.pc and the CMake package under PREFIX
	scripts/install-c.sh "$(PREFIX)"

bench-c: ## The C benchmark of the ABI against the same lookups in Rust (BENCHMARKS.md)
	BUILD=$(BUILD) scripts/bench-c.sh

test-python: ## The Python package: wheel, pytest, drop-in tests against msal, stubtest
	PY=$$(cd "$$(dirname "$$(scripts/venv.sh)")" && pwd)/python && scripts/python-wheel.sh "$$PY" \
		&& scripts/redis-server.sh run $$PY -m pytest -W error --timeout=300 -q -rs tests/python \
		&& (cd /tmp && $$PY -m mypy.stubtest tokencache)

bench-python: ## msal vs the Python package on W1/W2 (1k-100k), ratios (BENCHMARKS.md)
	PY=$$(cd "$$(dirname "$$(scripts/venv.sh)")" && pwd)/python && scripts/python-wheel.sh "$$PY" \
		&& $$PY bench/python_compare.py

bench-stores-python: ## Persisted add vs msal-extensions, and L1/L2 (real redis-server) through CacheProvider, from Python (BENCHMARKS.md)
	PY=$$(cd "$$(dirname "$$(scripts/venv.sh)")" && pwd)/python && scripts/python-wheel.sh "$$PY" \
		&& scripts/redis-server.sh run $$PY bench/python_stores.py

fuzz-smoke: ## A short bounded fuzz run of every fuzz target
	scripts/fuzz-smoke.sh

bench: bench-c bench-python bench-stores-python ## Every benchmark: Rust core vs msal, C ABI, Python package and stores (see BENCHMARKS.md)
	python3 bench/compare.py

fmt: ## Format the code
	$(CARGO) fmt --all

test-compat: ## Round trips through msal Python, msal-node, MSAL Go, msal4j (offline); writes COMPATIBILITY.md
	PY=$$(cd "$$(dirname "$$(scripts/venv.sh)")" && pwd)/python && scripts/python-wheel.sh "$$PY"
	CARGO="$(CARGO)" python3 tests/compat/driver.py --report COMPATIBILITY.md

test-cli: ## The tokencache command on the vectors, broken inputs and a real redis-server on 127.0.0.1
	scripts/redis-server.sh run $(CARGO) test --quiet -p tokencache-cli
