# mobile-cctv: the two commands a newcomer runs are `make demo` and `make test`.
# Each bootstraps what it needs: a .venv with the Python packages, and (as root, as in CI)
# the Debian packages some tests need. Without root those tests skip with a one-line reason.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := chromium postgresql systemd debootstrap systemd-container

.PHONY: demo test lint venv system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[control-room,test]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else echo "not root: Debian packages ($(APT_PACKAGES)) not installed; tests needing them will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check agent control_room provisioning tests benchmarks

test: system-deps $(STAMP) lint
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/cctv-agent run --config firmware_config/demo.toml

bench: $(STAMP)
	$(BIN)/python benchmarks/motion.py
	$(BIN)/python benchmarks/upload.py
	$(BIN)/python benchmarks/recording.py
	$(BIN)/python benchmarks/masks.py
	$(BIN)/python benchmarks/events.py
	$(BIN)/python benchmarks/heartbeat.py
	$(BIN)/python benchmarks/control_room.py
	$(BIN)/python benchmarks/control_room_web.py
	$(BIN)/python benchmarks/evidence.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
