# One command to run the server, one to run the tests. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint migration install install-dev capgo-cli clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: install, migrate and serve on http://127.0.0.1:8000 (SQLite under ./data)
run: install
	$(BIN)/capgo-server serve $(ARGS)

## make test: the whole suite, on SQLite and on PostgreSQL (CAPGO_TEST_DATABASE_URL), spread over
## 1.5 workers per CPU (pytest-xdist); a selection of a few files runs in one process (tests/conftest.py)
## TEST_WORKERS=N forces N workers, TEST_WORKERS=0 none.
TEST_WORKERS ?= auto
test: install-dev
	$(BIN)/pytest -n $(TEST_WORKERS) $(ARGS)

## make capgo-cli: install the official @capgo/cli versions the end-to-end tests run
## (tests/cli_compat/official.py) from npm into .cache/capgo-cli/VERSION; without them those
## tests skip. --ignore-scripts: no install script runs (8.35's optional node-pty build is not needed).
CAPGO_CLI_VERSIONS ?= 8.68.1 8.35.0
capgo-cli:
	@for version in $(CAPGO_CLI_VERSIONS); do \
		prefix=.cache/capgo-cli/$$version; \
		test -f $$prefix/.installed && continue; \
		echo "npm install @capgo/cli@$$version -> $$prefix"; \
		npm install --prefix $$prefix --no-audit --no-fund --ignore-scripts --fetch-retries=5 --save-exact \
			--loglevel=error @capgo/cli@$$version || exit 1; \
		touch $$prefix/.installed; \
	done

## make lint: formatting, lint and strict typing, as CI runs them
lint: install-dev
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy

## make migration MSG="what changed": autogenerate the next Alembic revision from the models
migration: install-dev
	$(BIN)/python -m capgo_server.db.migrate "$(MSG)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
