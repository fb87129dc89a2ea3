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
