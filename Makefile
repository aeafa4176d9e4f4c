# mobile-cctv: the two commands a newcomer runs are `make demo` and `make test`.
# Each bootstraps what it needs: a .venv with the Python packages, and (as root, as in CI)
# the Debian packages some tests need. Without root those tests skip with a one-line reason.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := chromium postgresql systemd debootstrap systemd-container

.PHONY: demo demo-agent demo-check test lint venv system-deps bench readme-table clean

# The packages are installed by uv (itself from PyPI, by pip): it installs in parallel and links files
# from its cache, about 7 s on a warm cache where pip took 45 (most of it unpacking ansible's and
# botocore's tens of thousands of files). Where uv cannot be installed or cannot reach the index (it
# reads no pip.conf; UV_INDEX_URL and friends configure it), pip does the same install.
# No byte-compiling (uv's default; pip's --no-compile): of the 24,000 .py files (15,000 of them in
# Ansible collections) almost none are imported, and Python compiles what is imported, on first use.
PROJECT_EXTRAS := .[control-room,test]
$(STAMP): pyproject.toml
	@echo "setup: creating the Python environment $(VENV) (first run only; later runs reuse it)"
	$(PYTHON) -m venv $(VENV)
	@echo "setup: installing mobile-cctv with the control-room and test extras (numpy, OpenCV, PyAV, boto3,"
	@echo "       Flask, SQLAlchemy, moto, Playwright, Ansible, ...): under a minute with uv, 1-5 with pip"
	@if $(BIN)/pip install --quiet uv && $(BIN)/uv pip install --quiet --python $(BIN)/python --upgrade pip \
	    && $(BIN)/uv pip install --quiet --python $(BIN)/python -e '$(PROJECT_EXTRAS)'; then :; else \
	  echo "setup: uv could not install the packages; installing them with pip"; \
	  $(BIN)/pip install --quiet --upgrade pip && $(BIN)/pip install --quiet --no-compile -e '$(PROJECT_EXTRAS)'; fi
	touch $(STAMP)
	@echo "setup: done"

venv: $(STAMP)

system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing (waits up to 10 min if another apt job holds the lock)"; \
	    apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing >/dev/null; \
	  fi; \
	else echo "not root: Debian packages ($(APT_PACKAGES)) not installed; tests needing them will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check agent control_room protocol provisioning tests benchmarks demo

# Tests run in parallel (pytest-xdist): two workers per core, since most tests wait on real time
# (throttled links, real-time footage, booting systems) rather than compute; tests/conftest.py starts
# the longest first. --maxschedchunk 1 hands tests out one at a time (xdist's default first hands each
# worker a quarter of its share in one block: the first worker got every long test, one after another).
# A hung test fails after 15 minutes instead of eating CI's 90.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))

# Without PYTHONDONTWRITEBYTECODE (set in some CI images): the suite starts many short-lived Python
# processes (agents, moto servers, ansible, the CLIs): with it, each compiled every module it imported
# from source, as the venv is installed --no-compile. Now the first import of a module caches its bytecode.
test: system-deps $(STAMP) lint
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -n $(TEST_WORKERS) --dist load --maxschedchunk 1 --durations=25

# The whole system: S3 (moto), the control room and three simulated units; Ctrl-C stops everything.
demo: $(STAMP)
	$(BIN)/python -m demo run $(DEMO_ARGS)

# Proof for CI: a fixed 30-second run (the flaky unit's link drops once), then every event checked in S3,
# the control room and Chromium.
demo-check: $(STAMP)
	$(BIN)/python -m demo check $(DEMO_ARGS)

# The unit agent alone over a sample clip (a fresh demo-output/ each time).
demo-agent: $(STAMP)
	rm -rf demo-output
	$(BIN)/cctv-agent run --config firmware_config/demo.toml

BENCH_STAMP := $(VENV)/.bench-installed
BENCHMARKS := motion upload recording masks events heartbeat control_room login_flood control_room_web evidence agent_resources

$(BENCH_STAMP): $(STAMP)
	@echo "setup: installing the bench extra (matplotlib, for the plots)"
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

# Every benchmark with progress (logs in build/bench-logs/), then the PNG plots and the README table.
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCHMARKS)

# The README's benchmark table from benchmarks/results/*.json (never edited by hand).
readme-table: $(STAMP)
	$(BIN)/python benchmarks/readme_table.py

clean:
	rm -rf $(VENV) demo-output demo-run demo-check-run .pytest_cache .ruff_cache
