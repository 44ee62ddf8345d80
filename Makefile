# Two commands for a newcomer: `make demo` and `make test`. Everything installs into .venv/ here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian/Ubuntu install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Serve the generated demo district at http://127.0.0.1:8000 (SQLite under var/), printing a login per level.
# Another address: make demo BIND=0.0.0.0:8080 (or PORT=8080).
PORT ?= 8000
BIND ?= 127.0.0.1:$(PORT)
demo: $(STAMP)
	BIHUAN_DEMO=1 $(BIN)/bihuan demo --bind $(BIND)

# The whole test suite on the database DATABASE_URL names (SQLite by default).
test: $(STAMP)
	BIHUAN_DEMO=1 $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	BIHUAN_DEMO=1 $(BIN)/bihuan makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var/*.sqlite3* test-artifacts
