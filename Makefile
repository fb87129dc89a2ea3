# FaceAdapt: `make demo` runs the main job, `make test` the test suite. Both create and fill
# .venv (Python 3.11: the backend's packages and Blender 5.0.1 as the bpy module) on first use
# from the fully pinned requirements.lock. `make test` also creates .venv-blender53 (Python
# 3.13: Blender 5.3.0 as the bpy module, and pytest) from requirements-blender53.lock, so the
# extension is tested on the oldest supported Blender and on the current one.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV53 ?= .venv-blender53
PY53 := $(VENV53)/bin/python
STAMP53 := $(VENV53)/.installed

# A Python 3.13 (Blender 5.3's version): PYTHON313 when given, else the first of these that
# runs as 3.13: python3.13 on PATH (a pyenv shim runs only when a 3.13 is selected), uv's, and
# pyenv's newest installed 3.13.x. Prints its path, or says what to install and fails.
find_python313 = \
	if [ -n "$(PYTHON313)" ]; then set -- "$(PYTHON313)"; else set -- python3.13 \
	  $$(command -v uv >/dev/null && uv python find 3.13 2>/dev/null) \
	  $$(command -v pyenv >/dev/null && echo "$$(pyenv prefix 3.13 2>/dev/null)/bin/python3.13"); fi; \
	for p in "$$@"; do \
	  "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$$p"; exit 0; }; \
	done; \
	echo "make: no Python 3.13 found (tried: $$*). Blender 5.3's test environment needs one:" \
	  "install it (pyenv install 3.13, uv python install 3.13, or your system's python3.13)," \
	  "or name it: make PYTHON313=/path/to/python3.13 ..." >&2; \
	exit 1

.PHONY: venv venv-blender53 test demo lint bench clean check-install

venv: $(STAMP)

# --no-deps: the lock is the whole resolved set. face-alignment declares opencv-python and
# mediapipe opencv-contrib-python; both ship cv2/, so only the contrib build is installed.
$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip uninstall --yes --quiet opencv-python 2>/dev/null || true
	touch $(STAMP)

venv-blender53: $(STAMP53)

# Blender 5.3's side of the process boundary only: bpy (from PyPI, about 400 MB), numpy and
# pytest; the backend it talks to is .venv's interpreter.
$(STAMP53): requirements-blender53.lock
	test -x $(PY53) || { python313=$$($(find_python313)) && "$$python313" -m venv $(VENV53); }
	$(PY53) -m pip install --quiet --no-deps -r requirements-blender53.lock
	touch $(STAMP53)

lint: venv
	$(PY) -m ruff check .

# 1. Everything on Blender 5.0.1 (bpy in .venv, the backend in the same environment).
# 2. The Blender-side tests (tests/conftest.py: BLENDER_SIDE_TESTS) on Blender 5.3.0 in its own
#    environment, the extension running the backend with .venv's interpreter, as users have it.
# 3. The Blender-side programs (Cycles clip renders) on Blender 5.3.0, started by the backend's
#    environment through $FACEADAPT_BLENDER_PYTHON, as `make-benchmark` does for users.
test: venv venv-blender53 lint
	$(PY) -m pytest -q
	FACEADAPT_BACKEND_PYTHON=$(abspath $(PY)) $(PY53) -m pytest -q --blender-side
	FACEADAPT_BLENDER_PYTHON=$(abspath $(PY53)) $(PY) -m pytest -q tests/blender_addon/test_render_clip.py

demo: venv
	$(PY) -m backend demo --out out

# The pipeline with the landmark fit and with the default tracker, the adaptation's cost
# against clip length and atlas size, then shots tracked by a loop of `track`, `batch` and
# `batch --engine ray` (about 15 minutes on 2 cores).
bench: venv
	$(PY) -m backend bench track --tracker landmark-fit --json bench/results/track.json
	$(PY) -m backend bench track --json bench/results/track_adapted.json
	$(PY) -m backend bench adapt --json bench/results/adapt.json
	$(PY) -m backend bench batch --json bench/results/batch.json

clean:
	rm -rf out dist

# Install Backend for real, started from Blender 5.3's Python version (3.13), with the
# add-on's install logic: a Python 3.11/3.12 found here makes out/install-check/venv from
# requirements-backend.lock, then a 2-frame track runs with it. Not part of `make test`: it
# downloads and installs about 2.8 GB (4 minutes here).
check-install:
	python313=$$($(find_python313)) && "$$python313" tests/blender_addon/install_backend_check.py \
	  --user-dir out/install-check
