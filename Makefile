# One entry point for everything: `make demo` runs the main job, `make test` the whole test suite.
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On CI machines (CI is set) torch comes from the CPU wheel that lies on disk; a user's machine
# gets torch the ordinary way through pyproject.toml. Override with e.g. TORCH_SPEC="torch==2.5.1".
TORCH_SPEC ?= $(if $(CI),torch==2.13.0,)

.PHONY: help venv install demo demo-models test test-browser check-wheel studio lab bench clean

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

# The shipped demo checkpoints retrained from scratch, with the commands of their READMEs, on two CPU
# threads: demo (the chorales, 4,000 steps), then demo_v2 from it (StyleBench v2 with reference
# augmentation: 2,500 steps, then 3,000 more with the chorales three times an epoch, 40% of the windows
# re-barred into one of fourteen meters, Pitch tokens weighted 3x, a tenth of the items asking for
# their own notes back, and the redrawn references moved up to an octave). Interrupted? Run it
# again: a stage whose folder exists resumes from its last checkpoint. Compare with `mstoolkit bench`.
RUNS  ?= runs
TRAIN := OMP_NUM_THREADS=2 $(PY) -m mstoolkit.cli train --config tiny --model.dropout 0 --model.time_bias true \
	--batch-size 16 --grad-accum 1 --eval-every 500 --ckpt-every 250 --num-workers 1 --keep-checkpoints 30
V2    := --data.corpus stylebench-v2 --data.triplets-per-window 2 --reference-timbres 1 --reference-room true \
	--eval-bench 32
resume = $(if $(wildcard $(RUNS)/$(1)/latest),--resume,)

demo-models: $(VENV)/.installed-core  ## retrain demo and demo_v2 from scratch into runs/ (hours: see the checkpoints' READMEs)
	$(TRAIN) --out $(RUNS)/demo --lr 1e-3 --warmup-steps 100 --max-steps 4000 $(call resume,demo)
	$(TRAIN) --out $(RUNS)/demo_v2_a --init-from $(RUNS)/demo $(V2) --lr 5e-4 --min-lr 5e-5 --warmup-steps 100 \
		--max-steps 2500 $(call resume,demo_v2_a)
	$(TRAIN) --out $(RUNS)/demo_v2 --init-from $(RUNS)/demo_v2_a $(V2) --collection-repeats bach=3 \
		--rebar-meters 2/4,5/4,6/4,7/4,9/4,11/4,3/8,5/8,6/8,7/8,9/8,11/8,12/8,13/8 --rebar-prob 0.4 \
		--pitch-loss-weight 3 --identity-prob 0.1 --reference-transpose 12 --lr 3e-4 --min-lr 3e-5 \
		--warmup-steps 50 --max-steps 3000 \
		$(call resume,demo_v2)

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
