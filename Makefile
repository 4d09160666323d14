# One entry point for everything: `make demo` runs the main job, `make test` the whole test suite.
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On CI machines (CI is set) torch comes from the CPU wheel that lies on disk; a user's machine
# gets torch the ordinary way through pyproject.toml. Override with e.g. TORCH_SPEC="torch==2.5.1".
TORCH_SPEC ?= $(if $(CI),torch==2.13.0,)

.PHONY: help venv install demo test test-browser studio lab bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ] && ! $(PY) -c "import torch" 2>/dev/null; then \
		echo "installing $(TORCH_SPEC)"; $(PY) -m pip install --quiet "$(TORCH_SPEC)"; fi
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv install: $(VENV)/.installed  ## create .venv and install mstoolkit with its test extras

demo: $(VENV)/.installed  ## the main job: a real run on a shipped sample (writes to out/)
	$(PY) -m mstoolkit.cli demo --out out

test: $(VENV)/.installed  ## the whole test suite (library, widgets, notebooks, browser)
	$(PY) -m pytest --nbval-lax tests notebooks

test-browser: $(VENV)/.installed  ## only the browser tests: notebooks in JupyterLab and the studio app, in Chromium
	$(PY) -m pytest tests/test_browser.py

studio: $(VENV)/.installed  ## the classroom app: Transfer Studio and style gallery in the browser (offline)
	$(VENV)/bin/mstoolkit studio

lab: $(VENV)/.installed  ## install JupyterLab and open the tutorial notebooks
	$(PY) -m pip install --quiet -e ".[test,lab]"
	$(VENV)/bin/jupyter lab notebooks/

bench: $(VENV)/.installed  ## the CPU benchmarks (tables printed)
	$(PY) benchmarks/bench_tokenizer.py
	$(PY) benchmarks/bench_audio.py
	$(PY) benchmarks/bench_model.py

clean:  ## remove the environment and generated files
	rm -rf $(VENV) out .pytest_cache test-artifacts
