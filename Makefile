# `make demo` and `make test` each set up .venv on their own; a second run only
# re-installs when setup.py changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean espeak-ng browser spoken-words train-kws

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

test: $(STAMP) espeak-ng browser
	$(PY) -m pytest -q tests

# espeak-ng (a Debian package) speaks the keyword-spotting data set; checked on every run so a
# machine set up before it was needed still gets it. Without root its tests skip.
espeak-ng:
	sh tools/apt_install.sh espeak-ng

# Chromium and its WebDriver run the web experiment (export_experiment --html) in the tests
# (tests/test_web_experiment.py, through selenium); Firefox ESR runs it too, over its own WebDriver
# BiDi (tests/test_web_experiment_firefox.py; Debian has no geckodriver). Without them those tests skip.
browser:
	sh tools/apt_install.sh chromium chromium-driver firefox-esr

# The 8000-clip spoken-word data set (6400/800/800) and the trained kws_2d network.
SPOKEN_WORDS ?= data/spoken_words
spoken-words: $(STAMP) espeak-ng
	$(PY) -m model_metamers.spoken_words --out=$(SPOKEN_WORDS) --clips=8000 --seed=0

train-kws: $(STAMP)
	test -f $(SPOKEN_WORDS)/labels.csv || $(MAKE) spoken-words
	$(PY) -m model_metamers.train --network=kws_2d --data=$(SPOKEN_WORDS) --output_dir=checkpoints \
	    --epochs=10 --patience=2 --seed=0

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache metamers_out
