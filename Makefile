# The README's two commands: `make run` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test bench clients clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps 'silero-vad==6.2.3'  # only its ONNX model: its deps pull torch
	touch $(STAMP)

# The main job: the conformance gate against the embedded reference server (started on free
# ports, stopped after); summary on stdout, reports under reports/.
run: $(STAMP)
	$(BIN)/rtcgate check --reference --profile hardened

serve: $(STAMP)
	$(BIN)/rtcgate serve

clients:
	bash scripts/install-clients.sh

test: $(STAMP) clients
	$(BIN)/ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.srtp_echo

clean:
	rm -rf $(VENV) reports/*.json reports/*.xml
