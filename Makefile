# LeadFlow: `make run` serves the demo, `make test` runs the suite. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Local runs are development runs unless the caller says otherwise.
export DEBUG ?= 1

.PHONY: run test install lint format migrate demo messages clean local-env bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --no-input -v 0

demo: migrate
	$(BIN)/python manage.py load_demo

# The git-ignored .env that `manage.py` in another terminal reads (leadflow/localenv.py):
# written on the first run, its PUBLIC_BASE_URL kept in step with PORT.
local-env: install
	@$(BIN)/python -m leadflow.localenv --port $(PORT)

# Everything `make run` starts reads that .env, also where CI is set (the smoke test), and
# logs at WARNING: errors, task failures and runserver's request lines, not every beat tick.
# honcho is told not to load .env itself: it would put the file above the real environment.
run: export LEADFLOW_ENV_FILE := $(CURDIR)/.env
run: export LOG_LEVEL ?= WARNING
run: local-env demo
	@$(BIN)/python manage.py demo_banner --url http://127.0.0.1:$(PORT)/
	PORT=$(PORT) $(BIN)/honcho -f Procfile.dev -e /dev/null start -p $(PORT)

# One pytest process per core (pytest-xdist); each has its own test database, var/ folder
# and broker/cache keys (tests/settings.py); tests marked with xdist_group share a process.
TEST_PROCESSES ?= auto
test: install
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadgroup $(PYTEST_ARGS)

# Every bench at full size on PostgreSQL + Redis, in a fresh database of its own
# (BENCH_DATABASE on DATABASE_URL's server, dropped afterwards); see README "Benchmarks".
BENCH_DATABASE ?= leadflow_bench_full
bench: install
	$(BIN)/python bench/run_all.py --database $(BENCH_DATABASE) $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/mypy leadflow scoring handoff sla integrations privacy ops
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: install
	$(BIN)/python manage.py makemessages -l ja --ignore=.venv --ignore=build --ignore=var
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var build db.sqlite3 db.sqlite3-wal db.sqlite3-shm .env
