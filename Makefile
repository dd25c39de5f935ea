# handmocap: the two set-up commands.
#   make test   create/refresh .venv from requirements/lock.txt, then run the whole test suite
#   make demo   create/refresh .venv, then run the demo (writes demo_output/)
#   make addon  build the Blender extension zip (dist/handmocap-VERSION.zip)
# The venv is refreshed only when requirements/lock.txt or pyproject.toml change.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
# pip notes every local index folder that lacks a package; those lines are noise.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.handmocap-installed
PIP    := $(PY) -m pip --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: test demo addon venv lint lock openhand picture clean

venv: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "handmocap needs $(PYTHON) (the Python that Blender 4.2-5.0 bundles)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned requirements into $(VENV) ..."
	@$(PIP) install -q --no-deps -r requirements/lock.txt 2>&1 | $(QUIET_PIP)
	@$(PIP) install -q --no-deps --no-build-isolation -e . 2>&1 | $(QUIET_PIP)
	@$(PY) -c "import handmocap.core"
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/handmocap demo --out demo_output

addon: $(STAMP)
	$(PY) tools/build_addon.py --out dist

lint: $(STAMP)
	$(VENV)/bin/ruff check core training blender_addon tests bench tools
	$(VENV)/bin/ruff format --check core training blender_addon tests bench tools

# Regenerate the committed open hand model files and their picture.
openhand: $(STAMP)
	$(PY) -m handmocap.core.openhand.generate --out core/assets/openhand
	$(VENV)/bin/handmocap draw-model --out docs/open_hand_model.png

# The lock pins every package; make test installs it with --no-deps, so it is all there is.
lock:
	rm -rf /tmp/handmocap-lock-venv && $(PYTHON) -m venv /tmp/handmocap-lock-venv
	/tmp/handmocap-lock-venv/bin/pip install -q -r requirements/base.in 2>&1 | $(QUIET_PIP)
	/tmp/handmocap-lock-venv/bin/pip install -q --no-deps -r requirements/nodeps.in 2>&1 | $(QUIET_PIP)
	{ echo "# Exact pins for the project's virtual environment (make test / make demo)."; \
	  echo "# Regenerate with: make lock (direct requirements: requirements/base.in, nodeps.in)"; \
	  /tmp/handmocap-lock-venv/bin/pip freeze --all | grep -v -E "^(pip|wheel)==" | sed 's/+cpu//'; \
	} > requirements/lock.txt

clean:
	rm -rf $(VENV) demo_output .pytest_cache dist build/addon
