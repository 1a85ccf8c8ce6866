# `make demo` and `make test` create the virtual environment from the pinned requirements when it
# is missing or stale: .venv (CPU, Python 3.11) by default; `VARIANT=gpu` uses the CUDA build of
# TensorFlow (requirements-gpu.txt) in .venv-gpu; `PYTHON=python3.12` another interpreter in
# .venv-python3.12.
PYTHON ?= python3.11
VARIANT ?= cpu
RUNTIME := $(if $(filter gpu,$(VARIANT)),requirements-gpu.txt,requirements.txt)
VENV ?= .venv$(if $(filter gpu,$(VARIANT)),-gpu)$(if $(filter python3.11,$(PYTHON)),,-$(notdir $(PYTHON)))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench venv venv-gpu gpu-check doctor clean

venv: $(STAMP)

venv-gpu:
	$(MAKE) venv VARIANT=gpu

$(STAMP): requirements-base.txt $(RUNTIME) requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(RUNTIME) -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# On a machine with an NVIDIA GPU: the GPU tests, then a short training and generation of each
# model with their speeds (builds .venv-gpu).
gpu-check:
	bash scripts/gpu_check.sh

# What this machine gives audiogen: devices, compiled ops, engines, precisions.
doctor: $(STAMP)
	$(PY) -m audiogen.doctor

# TensorFlow's C++ log lines off in the tests' own process (the CLIs hide them themselves).
TEST_ENV := TF_CPP_MIN_LOG_LEVEL=$${TF_CPP_MIN_LOG_LEVEL:-3}

test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q tests; s=$$?; if [ $$s -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$s

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q -m "not slow" tests

demo: $(STAMP)
	$(PY) scripts/demo.py

# Speed benchmarks (benchmarks/README.md): tables on stdout, JSON in benchmarks/results/.
bench: $(STAMP)
	$(PY) benchmarks/bench_generate.py
	$(PY) benchmarks/bench_train.py --quick

clean:
	rm -rf .venv .venv-* demo_out .pytest_cache
