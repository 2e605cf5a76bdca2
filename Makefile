# `make demo` and `make test` each create .venv when it is missing, install the project, and run.
PYTHON ?= python3
# Where pip's default index serves torch's CUDA build, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned (a plain `torch` could pull a multi-GB CUDA build; see TORCH_INDEX above)
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mstpn reproduce --out out/demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks results examples
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/device_step.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
