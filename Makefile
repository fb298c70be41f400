# Developer interface. `make test` is the README's test command (CI runs it through .ci/run).
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
CARGO ?= cargo
PYTEST_ARGS ?=

.PHONY: build test test-rust test-python lint fmt stubtest mypy demo wheel bench bench-quick soak fuzz clean

## build: install the package (Rust extension in release mode) and the test extras, editable.
build:
	$(PIP) install -q -e '.[test]'

## test: the whole suite — Rust unit/property tests, then pytest end to end. Every suite runs
## even when one fails; the target fails at the end, naming the suites that failed.
test: build
	@failed=""; \
	$(MAKE) --no-print-directory test-rust || failed="$$failed test-rust"; \
	$(MAKE) --no-print-directory test-python || failed="$$failed test-python"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed" >&2; exit 1; fi

test-rust:
	$(CARGO) test --all-targets --no-fail-fast

test-python:
	$(PYTHON) -m pytest $(PYTEST_ARGS)

## lint: formatting, clippy (warnings are errors), ruff, mypy --strict, stubtest.
lint: build
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features python -- -D warnings
	$(PYTHON) -m ruff check $(wildcard python tests examples bench)
	$(MAKE) mypy stubtest

mypy:
	$(PYTHON) -m mypy --strict python/stratuslab_libcloud examples
	$(PYTHON) -m mypy --strict tests/typing/user_script.py

stubtest:
	$(PYTHON) -m mypy.stubtest stratuslab_libcloud._stratuslab --allowlist stubtest-allowlist.txt

fmt:
	$(CARGO) fmt
	$(PYTHON) -m ruff format $(wildcard python tests examples bench)

## demo: the main job (README's first command does the same after `pip install .`).
demo:
	$(PYTHON) examples/quickstart.py

## wheel: the sdist, then the abi3 manylinux2014 wheel built from it (one wheel for every CPython
## >= 3.10; zig links it against glibc 2.17), in dist/, checked by auditwheel. Building from the
## sdist proves that it builds, and keeps an editable install's extension out of the wheel.
## Installs its tools (PyPI) first; reuses target/.
WHEEL_TOOLS ?= 'maturin>=1.7,<2' ziglang auditwheel
wheel:
	$(PIP) install -q $(WHEEL_TOOLS)
	rm -rf dist
	$(PYTHON) -m maturin sdist --out dist
	CARGO_TARGET_DIR="$${CARGO_TARGET_DIR:-$(CURDIR)/target}" \
	MATURIN_PEP517_ARGS="--zig --compatibility manylinux2014" \
		$(PIP) wheel -q --no-cache-dir --no-deps --no-build-isolation --wheel-dir dist dist/*.tar.gz
	$(PYTHON) -m auditwheel show dist/*.whl

bench:
	$(PYTHON) bench/run.py

bench-quick:
	$(PYTHON) bench/run.py --quick

## soak: the long runs (1,000-cycle soak) that the default test run shortens.
soak:
	$(PYTHON) -m pytest -m slow tests $(PYTEST_ARGS)

## fuzz: 2,000,000 executions per reader in release mode (`make test` runs 20,000 each).
FUZZ_EXECS ?= 2000000
fuzz:
	STRATUSLAB_FUZZ_EXECS=$(FUZZ_EXECS) $(CARGO) test --release --test fuzz_parsers -- --nocapture --test-threads=2

clean:
	$(CARGO) clean
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
