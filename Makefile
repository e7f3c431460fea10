# The two commands a new user runs: `make demo` and `make test`. Both create the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv demo test fuzz system-deps bench check clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bedrock,semantic]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m gateway.demo

# System packages first (installed as root, else the exact apt-get command is printed): see the script.
system-deps:
	@PYTHON=$(PYTHON) bash scripts/ensure-system-deps.sh

test: system-deps $(STAMP)
	$(BIN)/python -m pytest -q

# The long fuzz campaign (~100x the bounded one in make test): schemathesis over every /openapi.json operation
# and the hypothesis properties. Not part of make test.
fuzz: $(STAMP)
	GATEWAY_FUZZ_SCALE=100 $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration/test_fuzz.py \
		tests/providers/test_translation_total.py

bench: $(STAMP)
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/micro.py

check: $(STAMP)
	OPENAI_API_KEY=$${OPENAI_API_KEY:-dummy} $(BIN)/gateway check --strict config/gateway.yaml
	$(BIN)/gateway check --strict config/demo.yaml

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
