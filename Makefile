# `make demo` and `make test` each set up .venv on their own; a second run only
# re-installs when setup.py changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Python 3.12 (Colab's): `make test` also runs the fast core tests in a second venv on it.
# Override with PYTHON312=/path/to/python3.12; with none found that step is skipped and says so.
PYTHON312 ?= $(shell sh tools/find_python.sh 3.12)
VENV312 := .venv312
PY312 := $(VENV312)/bin/python
STAMP312 := $(VENV312)/.installed
CORE_TESTS := tests/test_tfcochleagram.py tests/test_layers.py tests/test_synthesis.py tests/test_validation.py

.PHONY: setup demo test test-py312 mutation bench clean espeak-ng browser spoken-words train-kws

# libtcmalloc-minimal4: the tools run 1.6x faster on it (model_metamers/allocator.py); optional.
SYSTEM_PACKAGES := libtcmalloc-minimal4

$(STAMP): setup.py
	sh tools/apt_install.sh $(SYSTEM_PACKAGES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plots]'
	touch $(STAMP)

setup: $(STAMP)

$(STAMP312): setup.py
	test -x $(PY312) || $(PYTHON312) -m venv $(VENV312)
	$(PY312) -m pip install --quiet --upgrade pip
	$(PY312) -m pip install --quiet -e '.[test,plots]'
	touch $(STAMP312)

demo: $(STAMP)
	$(PY) run_generation.py --demo

test: $(STAMP) espeak-ng browser
	$(PY) -m pytest -q tests
	$(MAKE) test-py312

test-py312:
	@if [ -z "$(PYTHON312)" ]; then \
	    echo "skipping the Python 3.12 core tests: no python3.12 found (set PYTHON312=/path/to/python3.12)"; \
	else \
	    $(MAKE) $(STAMP312) PYTHON312=$(PYTHON312) && \
	    $(PY312) -m pytest -q -m 'not slow' $(CORE_TESTS); \
	fi

# Mutation testing (not part of `make test`; hours on two cores): mutmut changes one operator or
# constant at a time in MUTATE, in place, and runs MUTATION_TESTS against each mutant. Results stay
# in .mutmut-cache (`$(PY) -m mutmut results`, `$(PY) -m mutmut show N`). A bounded run, e.g.
#   make mutation MUTATE=model_metamers/validation.py MUTATION_TESTS=tests/test_validation.py MUTATION_TIMEOUT=900
# is in BUILD_NOTES.md (issue 25), with its survivors and why they are harmless. The time box
# stops mutmut with SIGINT, on which it puts the file under test back (and with SIGKILL a minute
# later: mutmut 2.5.1 can hang in its exit clean-up after SIGINT, the file already restored).
# MUTATION_ONLY='FILE:func,Class.method FILE' mutates only those functions' lines
# (tools/mutation_patch.py writes the patch mutmut's --use-patch-file reads), so one box on a
# large module checks what matters first.
MUTATE ?= model_metamers/synthesis,model_metamers/validation.py,model_metamers/generation.py,model_metamers/stimuli.py,model_metamers/result_records.py,model_metamers/resume.py,model_metamers/null_distribution.py,tfcochleagram
MUTATION_TESTS ?= tests/test_synthesis.py tests/test_validation.py tests/test_generation.py \
    tests/test_generation_faults.py tests/test_resume.py tests/test_null_distribution.py tests/test_tfcochleagram.py
MUTATION_TIMEOUT ?= 0
# Seconds after which one mutant's test run is stopped and counted as killed (0: mutmut's own
# limit, ten times the unmutated run); tools/mutation_runner.sh says why.
MUTATION_TEST_LIMIT ?= 0
MUTATION_ONLY ?=
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e '.[mutation]'
	# mutmut exits non-zero when mutants survive; the results below are the outcome.
	$(if $(MUTATION_ONLY),$(PY) tools/mutation_patch.py $(MUTATION_ONLY) > .mutmut-only.patch)
	-timeout -s INT -k 60 $(MUTATION_TIMEOUT) nice $(PY) -m mutmut run --paths-to-mutate=$(MUTATE) \
	    $(if $(MUTATION_ONLY),--use-patch-file=.mutmut-only.patch) \
	    --runner="sh tools/mutation_runner.sh $(MUTATION_TEST_LIMIT) $(PY) -m pytest -x -q -p no:cacheprovider -m 'not slow' $(MUTATION_TESTS)" \
	    --tests-dir=tests --no-progress
	# A box stopped in the middle of a mutant can leave it in place with the original beside it
	# (mutmut's FILE.py.bak): put every such original back.
	@for b in $$(git ls-files --others --exclude-standard -- '*.py.bak'); do \
	    echo "restoring $${b%.bak} from $$b"; mv "$$b" "$${b%.bak}"; done
	$(PY) -m mutmut results

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
	rm -rf $(VENV) $(VENV312) *.egg-info .pytest_cache .mutmut-cache metamers_out
