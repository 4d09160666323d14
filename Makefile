# One entry point for everything: `make demo` runs the main job, `make test` the whole test suite.
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On CI machines (CI is set) torch comes from the CPU wheel that lies on disk; a user's machine
# gets torch the ordinary way through pyproject.toml. Override with e.g. TORCH_SPEC="torch==2.5.1".
TORCH_SPEC ?= $(if $(CI),torch==2.13.0,)

.PHONY: help venv install demo test test-browser check-wheel studio lab bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# One stamp per set of extras, so each target installs what it needs and no more: `make demo` the
# core (no test tools, no Voila, no JupyterLab), `make studio` + Voila, `make lab` + JupyterLab,
# `make test` everything the tests use. Editing pyproject.toml re-installs.
$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ] && ! $(PY) -c "import torch" 2>/dev/null; then \
		echo "installing $(TORCH_SPEC)"; $(PY) -m pip install --quiet "$(TORCH_SPEC)"; fi
	$(PY) -m pip install --quiet -e ".$(if $(filter core,$*),,[$*])"
	touch $@

venv install: $(VENV)/.installed-test  ## create .venv and install mstoolkit with its test extras

demo: $(VENV)/.installed-core  ## the main job: a real run on a shipped sample (writes to out/)
	$(PY) -m mstoolkit.cli demo --out out

test: $(VENV)/.installed-test  ## the whole test suite (library, widgets, notebooks, browser)
	$(PY) -m pytest --nbval-lax tests notebooks

test-browser: $(VENV)/.installed-test  ## only the browser tests: notebooks in JupyterLab and Notebook 7, the studio app, in Chromium
	$(PY) -m pytest tests/test_browser.py

check-wheel:  ## build the wheel, install it in a fresh venv outside the repository, use it from another folder
	PYTHON=$(PYTHON) TORCH_SPEC="$(or $(TORCH_SPEC),torch==2.13.0)" bash .ci/wheel_check.sh

studio: $(VENV)/.installed-studio  ## the classroom app: Transfer Studio and style gallery in the browser (offline)
	$(VENV)/bin/mstoolkit studio

lab: $(VENV)/.installed-lab  ## install JupyterLab and open the tutorial notebooks
	$(VENV)/bin/jupyter lab notebooks/

bench: $(VENV)/.installed-test  ## the CPU benchmarks (tables printed)
	$(PY) benchmarks/bench_tokenizer.py
	$(PY) benchmarks/bench_audio.py
	$(PY) benchmarks/bench_model.py

clean:  ## remove the environment and generated files
	rm -rf $(VENV) out .pytest_cache test-artifacts
