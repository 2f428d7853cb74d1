# audio_assets: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test ui bench soak lint format clean

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/audio-assets demo

ui: $(STAMP)
	$(VENV)/bin/audio-assets ui

test: $(STAMP)
	$(VENV)/bin/ruff check audio_assets audio_assets_tests
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks

soak: $(STAMP)
	$(PY) -m audio_assets.soak --rate 0.2

lint: $(STAMP)
	$(VENV)/bin/ruff check audio_assets audio_assets_tests

format: $(STAMP)
	$(VENV)/bin/ruff format audio_assets audio_assets_tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
