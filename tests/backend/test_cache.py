"""A cache folder that cannot be written means working without caching, never failing."""

from __future__ import annotations

import os

import pytest

from backend.cache import writable_cache_subdir
from backend.library_log import library_log_path


def _unwritable_cache(tmp_path, monkeypatch):
    # A file where the cache folder should be: every write under it fails (NotADirectoryError)
    # for root too, who bypasses the permission bits of a chmod'ed read-only folder.
    cache = tmp_path / "cache"
    cache.write_bytes(b"")
    monkeypatch.setenv("FACEADAPT_CACHE", str(cache))
    return cache


def test_writable_cache_subdir_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEADAPT_CACHE", str(tmp_path / "cache"))
    assert writable_cache_subdir("warp") == tmp_path / "cache" / "warp"
    assert (tmp_path / "cache" / "warp").is_dir()


def test_unwritable_cache_gives_no_cache_subdir(tmp_path, monkeypatch):
    _unwritable_cache(tmp_path, monkeypatch)
    assert writable_cache_subdir("heads") is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0555 folder")
def test_read_only_cache_folder_gives_no_cache_subdir(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    monkeypatch.setenv("FACEADAPT_CACHE", str(cache))
    try:
        assert writable_cache_subdir("heads") is None
    finally:
        cache.chmod(0o755)


def test_unwritable_cache_puts_the_library_log_in_a_temp_file(tmp_path, monkeypatch):
    cache = _unwritable_cache(tmp_path, monkeypatch)
    log = library_log_path()
    try:
        assert log.is_file() and cache not in log.parents
        assert log.name.startswith("faceadapt-backend-")
    finally:
        log.unlink()


@pytest.mark.data
def test_textured_track_with_an_unwritable_cache_carries_on_without_caching(data_dir, tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT

    cache = tmp_path / "cache"
    cache.write_bytes(b"")  # every write under it fails, for root as well (see above)
    temp = tmp_path / "tmp"  # where the library log and Warp's kernels go instead
    temp.mkdir()
    env = {**os.environ, "FACEADAPT_CACHE": str(cache), "PYTHONPATH": str(REPO_ROOT),
           "TMPDIR": str(temp)}
    done = subprocess.run([sys.executable, "-m", "backend", "track",
                           str(data_dir / "videos" / "lp_driving_d3.mp4"), "--out",
                           str(tmp_path / "results"), "--frames", "0-1", "--texture-size", "32",
                           "--device", "cpu"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "results" / "result.json").is_file()
    assert any((tmp_path / "results" / "textures").iterdir())
    assert cache.read_bytes() == b""
    logs = list(temp.glob("faceadapt-backend-*.log"))
    assert len(logs) == 1 and "python -m backend track" in logs[0].read_text()
    assert not list(temp.glob("faceadapt-warp-*"))  # removed at exit
