# Entry points for a fresh clone. Each target creates or refreshes .venv/ when
# pyproject.toml is newer than the last install, then runs inside it.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: board report test test-full network venv clean

board: $(STAMP)
	$(VENV)/bin/bincount build --board ulx3s-85f

report: $(STAMP)
	$(VENV)/bin/bincount report

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 tests sim

test-full: $(STAMP)
	BINCOUNT_FULL=1 $(VENV)/bin/python -m pytest -n 2 tests sim

network: $(STAMP)
	$(VENV)/bin/bincount generate network -o build/network

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf build sim_build
