# Every target bootstraps its own virtualenv from pyproject.toml; nothing is installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: demo test lint typecheck unit browser bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## Backtest the bundled ML strategy over the bundled sample data
	$(BIN)/tradeloop backtest --data examples/data/sample.parquet \
	    --strategy examples/ml_strategy.py:MLStrategy \
	    --context examples/data/vix.parquet --signals ml_pred,confidence --commission 0.0005
	$(BIN)/python examples/12_paper_vs_backtest.py

lint: $(STAMP)
	$(BIN)/ruff check src adapters tests examples benchmarks
	$(BIN)/ruff format --check src adapters tests examples benchmarks
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy

# -n auto: one pytest worker per core (2 here); the slow tests mostly wait on daemon and
# venue subprocesses, so two workers halve the wall clock (plain .venv/bin/pytest: one process)
unit: $(STAMP) browser
	$(BIN)/pytest -n auto --dist worksteal

# The report test opens the HTML report in headless Chromium (Debian's build and its matching
# driver); installed once, only when missing, so a fresh CI machine gets it and others skip it.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	    echo "installing chromium and chromium-driver (Debian packages) for the report test"; \
	    $(APT) install -y -qq chromium chromium-driver >/dev/null 2>&1 || { \
	        $(APT) update -qq && $(APT) install -y -qq chromium chromium-driver >/dev/null; }; }

test: lint typecheck unit  ## ruff + mypy + pytest

soak: $(STAMP)  ## The fault matrix over a long venue clock (600 bars per fault; ~4 min)
	$(BIN)/pytest -n auto -m soak tests/adapters/test_fault_matrix.py

bench: $(STAMP)  ## Full benchmarks vs backtrader and vectorbt (installs both into the venv)
	$(BIN)/python -m pip install --quiet 'backtrader==1.9.78.123' 'vectorbt==1.2.0'
	$(BIN)/python -m compileall -q src  # byte-compile first: (d) times an import, not a compile
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/declarative.py
	$(BIN)/python benchmarks/runtime.py
	$(BIN)/python benchmarks/codec_binance.py
	$(BIN)/python benchmarks/codec_alpaca.py
	$(BIN)/python benchmarks/sweep.py  # 64-combination sweep: inline, local pool, Dask (1 vs 2 workers); 1,000 on 2; vectorbt
	$(BIN)/python benchmarks/instructions.py  # callgrind instructions per bar of (a): the figure that does not drift
	$(BIN)/python benchmarks/live_instructions.py  # callgrind instructions per live 500-asset frame ((j) without the socket)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
