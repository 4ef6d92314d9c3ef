# `make demo` and `make test` each set up .venv on their own; a second run only
# re-installs when setup.py changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

# libtcmalloc-minimal4: the tools run 1.6x faster on it (model_metamers/allocator.py); optional.
SYSTEM_PACKAGES := libtcmalloc-minimal4

$(STAMP): setup.py
	sh tools/apt_install.sh $(SYSTEM_PACKAGES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plots]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) run_generation.py --demo

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache metamers_out
