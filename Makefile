# FaceAdapt: `make demo` runs the main job, `make test` the test suite. Both create and fill
# .venv (Python 3.11) on first use from the fully pinned requirements.lock.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint bench clean

venv: $(STAMP)

# --no-deps: the lock is the whole resolved set. face-alignment declares opencv-python and
# mediapipe opencv-contrib-python; both ship cv2/, so only the contrib build is installed.
$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip uninstall --yes --quiet opencv-python 2>/dev/null || true
	touch $(STAMP)

lint: venv
	$(PY) -m ruff check .

test: venv lint
	$(PY) -m pytest -q

demo: venv
	$(PY) -m backend demo --out out

bench: venv
	$(PY) -m backend bench track --json bench/results/track.json

clean:
	rm -rf out dist

# Install Backend for real, started from Blender 5.3's Python version (3.13), with the
# add-on's install logic: a Python 3.11/3.12 found here makes out/install-check/venv from
# requirements-backend.lock, then a 2-frame track runs with it. Not part of `make test`: it
# downloads and installs about 2.8 GB (4 minutes here). On this machine's pyenv:
# `PYENV_VERSION=3.13.0 make check-install`.
PYTHON313 ?= python3.13
.PHONY: check-install
check-install:
	$(PYTHON313) tests/blender_addon/install_backend_check.py --user-dir out/install-check
