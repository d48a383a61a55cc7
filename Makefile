# Hounsfield: the two commands of the quick start (`make run`, `make test`) and their helpers.
# Every target bootstraps what it needs, so a fresh machine needs only Python 3.11+.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck unit bootstrap system-deps bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

bootstrap: $(STAMP)

## Start the archive with the embedded defaults (SQLite + files under ./data); HOUNSFIELD_* apply.
run: $(STAMP)
	$(BIN)/hounsfield serve

## Debian tools used by interop tests and the bench smoke test (Orthanc); only when root,
## otherwise they must already be installed.
system-deps:
	@if [ "$$(id -u)" = "0" ]; then \
	  if ! command -v storescu >/dev/null || ! command -v dciodvfy >/dev/null \
	      || ! command -v Orthanc >/dev/null || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk dicom3tools orthanc orthanc-dicomweb >/dev/null; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## The whole suite: lint, types, import layers, then every test.
test: bootstrap system-deps lint typecheck
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
