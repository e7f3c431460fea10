# The two commands a new user runs: `make demo` and `make test`. Both create the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv demo test bench check clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bedrock,semantic]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m gateway.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/bench.py

check: $(STAMP)
	OPENAI_API_KEY=$${OPENAI_API_KEY:-dummy} $(BIN)/gateway check --strict config/gateway.yaml
	$(BIN)/gateway check --strict config/demo.yaml

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
