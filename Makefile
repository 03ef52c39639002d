# Two commands: `make book` builds the HTML book, `make test` runs every test (and `make lab` opens the chapters).
# Each sets up what it needs (a virtual environment in .venv, the offline book assets, chromium) on a fresh machine.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Three layers, each on top of the one before: the reader's (requirements.txt), the book's, the tests'.
READER_STAMP := $(VENV)/.reader-installed
BOOK_STAMP := $(VENV)/.book-installed
DEV_STAMP  := $(VENV)/.dev-installed
ASSETS     := _vendor/_static/offline/.fetched
# The execution cache keys on a notebook's code only; this stamp clears it when optimlab/ changes (its modules,
# the problems package, and the JavaScript that the playground widget inlines into a page).
PACKAGE_STAMP := _build/.optimlab-sources
NOTEBOOKS  := $(wildcard chapters/*.ipynb pages/*.ipynb)
# nbval spreads the chapters over both cores once there are two of them (one kernel per chapter and core).
NBVAL_JOBS := $(if $(word 2,$(NOTEBOOKS)),-n 2 --dist loadfile)
# Warnings are errors (-W), every reference must resolve (-n), and every page is rebuilt (--all), so that a
# second build reports the warnings of unchanged pages too.
JB_FLAGS   := -W -n --keep-going --all
TIMES      := _build/stage-times.txt

# $(call timed,STAGE,COMMAND): run COMMAND; print and record how long it took.
timed = t0=$$(date +%s%N); $(2) || exit $$?; t1=$$(date +%s%N); mkdir -p _build; \
	printf '[time] %-14s %7.1f s\n' '$(1)' "$$(( (t1 - t0) / 1000000 ))e-3" | tee -a $(TIMES)

# numpy's BLAS on one thread per process: the chapters' minibatch problems make many small matrix products, which
# two BLAS threads slow down badly when the two cores are busy (a sweep took 28 s instead of 1.9 s under load).
export OPENBLAS_NUM_THREADS := 1

# Stages run one after another, in the order given (cheapest first), even under make -j.
.NOTPARALLEL:

.PHONY: help setup lab lint unit notebooks assets book browser-setup browser execute test clean editions student \
	editions-test

help:
	@echo "make lab            open the chapters in JupyterLab (sets up the reader's environment in .venv)"
	@echo "make book           build the HTML book into _build/html (executes every chapter)"
	@echo "make test           run every test: lint, unit, notebooks (strict nbval), book build, browser"
	@echo "make execute        re-execute chapters/*.ipynb in place (fresh outputs, no widget state)"
	@echo "make editions       write the plain edition notebooks/ (Colab, Binder, any Jupyter) from the build"
	@echo "make student        the student edition: _build/student/chapters (notebooks) and _build/student/html"
	@echo "make lint | unit | notebooks | browser    one stage of the tests (browser tests the last build)"
	@echo "make assets | browser-setup | setup       fetch offline assets | install chromium | make .venv"

# ----------------------------------------------------------------------------------------- environment
# The pinned requirements install on Python 3.11 to 3.13 (`make lab PYTHON=python3.12` picks another one).
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { version=$$($(PYTHON) --version); \
		echo "error: $(PYTHON) is $$version; the course needs 3.11 or newer (make ... PYTHON=python3.12)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(READER_STAMP): requirements.txt pyproject.toml | $(PY)
	@$(call timed,venv-reader,$(PY) -m pip install --quiet -r requirements.txt)
	@# On a new machine matplotlib builds its font cache on first import and says so on stderr: let that
	@# happen here, not inside a chapter (where it would be an unexpected output and a build warning).
	$(PY) -c "import matplotlib.pyplot"
	touch $@

$(BOOK_STAMP): requirements-book.txt $(READER_STAMP)
	@$(call timed,venv-book,$(PY) -m pip install --quiet -r requirements-book.txt)
	touch $@

$(DEV_STAMP): requirements-dev.txt $(BOOK_STAMP)
	@$(call timed,venv-dev,$(PY) -m pip install --quiet -r requirements-dev.txt)
	touch $@

setup: $(DEV_STAMP)

# MathJax, RequireJS and the widget manager, served with the book so that it works offline (not in git).
$(ASSETS): scripts/fetch_assets.sh
	@$(call timed,assets,scripts/fetch_assets.sh)

assets: $(ASSETS)

browser-setup:
	@$(call timed,browser-setup,scripts/setup_browser.sh)

# ----------------------------------------------------------------------------------------- reading
# JupyterLab on the plain edition of the chapters (notebooks/: every reference, number and citation as in the web
# book), from the reader's environment; it prints the address to open (with its token). The MyST sources are in
# chapters/ (jupyterlab-myst renders most of them).
# JupyterLab refuses to run as root unless told (a container's user often is root).
lab: $(READER_STAMP)
	@echo "JupyterLab on notebooks/: open the http://127.0.0.1:... address printed below; Ctrl-C stops it."
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_FLAGS)

# ----------------------------------------------------------------------------------------- the book
$(PACKAGE_STAMP): $(wildcard optimlab/*.py optimlab/problems/*.py optimlab/*.js)
	rm -rf _build/.jupyter_cache
	mkdir -p _build && touch $@

book: $(BOOK_STAMP) $(ASSETS) $(PACKAGE_STAMP)
	@$(call timed,book,$(VENV)/bin/jupyter-book build . $(JB_FLAGS))

# ----------------------------------------------------------------------------------------- editions
# Both take the book's numbers from the build, so they build the book first (cached: seconds once it is built).
# notebooks/ is committed: run `make editions` after changing a chapter, and commit it (the tests check it).
editions: book
	@$(call timed,editions,$(PY) scripts/editions.py plain)

student: book
	@$(call timed,student,$(PY) scripts/editions.py student && \
		$(VENV)/bin/jupyter-book build _build/student/src --path-output _build/student/out $(JB_FLAGS) >_build/student/build.log \
		|| { tail -40 _build/student/build.log; exit 1; }; \
		rm -rf _build/student/html && mv _build/student/out/_build/html _build/student/html)
	@echo "student edition: _build/student/chapters/*.ipynb and _build/student/html/index.html"

execute: $(BOOK_STAMP)
	@$(call timed,execute,$(PY) scripts/execute_notebooks.py $(NOTEBOOKS))

# ----------------------------------------------------------------------------------------- tests
lint: $(DEV_STAMP)
	@$(call timed,lint,$(PY) -m ruff check .)

# On two workers (pytest-xdist): the tests share no files (each writes under its own tmp_path), and the stage took
# 6 minutes on one core of the 2-core machine, 3 on both.
unit: $(DEV_STAMP)
	@$(call timed,unit,$(PY) -m pytest -q -p no:cacheprovider -n 2 -m "not browser and not book and not reader" tests)

# Strict nbval: every stored output of every chapter must be what a fresh run produces.
notebooks: $(DEV_STAMP)
ifeq ($(NOTEBOOKS),)
	@echo "notebooks: no chapter notebooks yet, nothing to compare"
else
	@$(call timed,notebooks,$(PY) -m pytest -q -p no:cacheprovider $(NBVAL_JOBS) --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval-sanitize.cfg --nbval-cell-timeout=120 \
		--nbval-kernel-startup-timeout=120 -p tests.nbval_kernel_retry $(NOTEBOOKS))
endif

# The editions against the last build: numbers, citations, solutions folded or absent, notebooks/ up to date.
editions-test: $(DEV_STAMP)
	@$(call timed,editions-test,$(PY) -m pytest -q -p no:cacheprovider -m book tests)

# The last build in headless Chromium (`make book` first; `make test` does both), and a chapter in JupyterLab.
# Two sessions: the built book, then JupyterLab (a JupyterLab server and its kernel beside the book's page visits
# slowed them past their time-outs on this 2-core machine). JupyterLab runs from the reader's environment alone,
# _build/reader-venv, made from requirements.txt (again only when it changes; pip's cache makes that quick).
browser: $(DEV_STAMP)
	@$(call timed,browser,$(PY) -m pytest -q -p no:cacheprovider -m browser tests/test_book.py tests/test_layout.py)
	@$(call timed,reader-venv,$(PY) scripts/reader_venv.py)
	@$(call timed,jupyterlab,$(PY) -m pytest -q -p no:cacheprovider -m "browser or reader" tests/test_jupyterlab.py)

# Cheap stages first: a lint error stops the run in seconds, not after the book build.
test:
	@mkdir -p _build && rm -f $(TIMES)
	@$(MAKE) --no-print-directory setup
	@$(MAKE) --no-print-directory lint unit notebooks browser-setup book student editions-test browser
	@echo "== time per stage ==" && cat $(TIMES)

clean:
	rm -rf _build _vendor
