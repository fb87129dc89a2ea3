"""Library output (native writes to fds 1 and 2, Python warnings) goes to the log file; the
backend's own stdout/stderr still reach the caller."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

PROGRAM = """
import os, sys, warnings
from pathlib import Path
from backend.library_log import library_output_to_log

with library_output_to_log(Path(sys.argv[1]), ["demo"]):
    os.write(2, b"native banner on fd 2\\n")
    os.write(1, b"native banner on fd 1\\n")
    warnings.warn("a library warning")
    print('{"event":"log","message":"ours"}')
    print("our progress", file=sys.stderr)
print("after the block", file=sys.stderr)
"""


def test_native_output_goes_to_the_log_and_ours_to_the_caller(tmp_path):
    log = tmp_path / "logs" / "backend.log"
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(log)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"event":"log","message":"ours"}\n'
    assert done.stderr == "our progress\nafter the block\n"
    text = log.read_text()
    assert text.startswith("=== ") and "python -m backend demo" in text
    for line in ("native banner on fd 2", "native banner on fd 1", "a library warning"):
        assert line in text


@pytest.mark.data
def test_the_backend_cli_keeps_banners_out_of_its_output(tmp_path, data_dir):
    # MediaPipe (TensorFlow Lite, absl) detects and Warp unwraps textures: both print banners.
    env = {**os.environ, "FACEADAPT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "backend", "track",
                           str(data_dir / "videos" / "lp_driving_d3.mp4"), "--out",
                           str(tmp_path / "results"), "--frames", "0-1", "--texture-size", "32",
                           "--device", "cpu"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "cache" / "logs" / "backend.log").read_text()
    assert "TensorFlow Lite" in log  # the banners happened, and went here
    for banner in ("TensorFlow Lite", "absl", "W0000", "Warp"):
        assert banner not in done.stderr and banner not in done.stdout
