# The two commands a newcomer needs: `make demo` and `make test`. Both run `make setup` first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := xvfb xdotool x11-utils x11-xserver-utils chromium chromium-driver ffmpeg \
	fonts-dejavu-core libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 \
	libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-shape0 libxcb-xkb1 \
	libgl1 libegl1 libfontconfig1 libdbus-1-3
STAMP := $(VENV)/.setup-done

.PHONY: setup apt test demo bench lint clean

setup: $(STAMP)

# Re-run only when the dependencies change; `rm .venv/.setup-done` forces it.
$(STAMP): pyproject.toml Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	# torch==2.13.0 is pinned in the train extra: pip takes the local CPU wheel, never a CUDA build.
	$(PY) -m pip install -q -e '.[train,dev]'
	# pyautogui pulls python3-xlib, an old fork that installs the same `Xlib` package: keep python-xlib's.
	$(PY) -m pip install -q --force-reinstall --no-deps 'python-xlib==0.33'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q

# With a display: the supervisor app, the default model playing MiniWoB++ (`emulator app --start`);
# without one (CI, ssh): the headless run of the model on the 20-task suite.
demo: setup
	@if [ -n "$$DISPLAY" ] && xdpyinfo >/dev/null 2>&1; then \
		$(VENV)/bin/emulator app --start; \
	else \
		echo "demo: no display, so the headless run (emulator demo); with a display, make demo opens the app"; \
		$(VENV)/bin/emulator demo; \
	fi

bench: setup
	@for b in capture input step recorder infer train; do $(VENV)/bin/emulator bench $$b --json; done

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) out .pytest_cache
