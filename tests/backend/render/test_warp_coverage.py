"""Warp's kernel cache is disposable: a truncated entry is cleared and rebuilt, and a cache that
cannot be written leaves Warp compiling into a folder of the run's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

# One triangle covering the lower-left half of a 5x5 image: 15 pixels.
PROGRAM = """
import torch
from backend.render.warp_coverage import cover
screen = torch.tensor([[[0.0, 0.0, 1.0], [4.0, 0.0, 1.0], [0.0, 4.0, 1.0]]])
triangle, depth = cover(screen, torch.tensor([[0, 1, 2]]), 5, 5, 0.01, False)
print(int((triangle >= 0).sum()))
"""


def _cover_in_a_fresh_process(cache: Path) -> subprocess.CompletedProcess:
    # Warp is initialised once per process with its cache folder, hence a process per run.
    env = {**os.environ, "FACEADAPT_CACHE": str(cache), "PYTHONPATH": str(REPO_ROOT),
           "PYTHONWARNINGS": "always"}
    return subprocess.run([sys.executable, "-c", PROGRAM], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


def test_truncated_warp_kernel_cache_is_cleared_and_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    first = _cover_in_a_fresh_process(cache)
    assert first.returncode == 0 and first.stdout.strip() == "15", first.stderr
    entries = sorted((cache / "warp").rglob("wp_backend.render.warp_coverage_*"))
    meta = [p for p in entries if p.suffix == ".meta"]
    objects = [p for p in entries if p.suffix == ".o"]
    assert meta and objects, entries
    for truncated in (meta[0], objects[0]):  # a bare JSON error, then 'Failed to load CPU module'
        truncated.write_bytes(truncated.read_bytes()[:20])
        again = _cover_in_a_fresh_process(cache)
        assert again.returncode == 0 and again.stdout.strip() == "15", again.stderr
        assert f"Warp's kernel cache {cache / 'warp'}" in again.stderr
        assert truncated.stat().st_size > 20  # rebuilt in place
        assert "15" == _cover_in_a_fresh_process(cache).stdout.strip()


def test_unwritable_warp_kernel_cache_compiles_into_a_private_folder(tmp_path):
    # A file where the cache folder should be: creating or writing under it fails with
    # NotADirectoryError for every user, as a read-only folder does for non-root users
    # (root bypasses permission bits, so chmod cannot show it here).
    cache = tmp_path / "cache"
    cache.write_bytes(b"")
    done = _cover_in_a_fresh_process(cache)
    assert done.returncode == 0 and done.stdout.strip() == "15", done.stderr
    assert cache.read_bytes() == b""
