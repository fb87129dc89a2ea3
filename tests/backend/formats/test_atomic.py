"""Atomic publishing: a reader sees the old output or the complete new one, never a part, and
nothing temporary is left behind, whatever fails."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from backend.formats.atomic import atomic_directory, atomic_file


class Boom(Exception):
    pass


def names(folder: Path) -> list[str]:
    """Everything in `folder`, hidden temp files included."""
    return sorted(p.name for p in folder.iterdir())


def make_output(path: Path, marker: str) -> Path:
    path.mkdir(parents=True)
    (path / "result.json").write_text(marker)
    (path / f"{marker}.txt").write_text(marker)
    return path


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


# --- atomic_file ---------------------------------------------------------------------------

def test_atomic_file_renames_the_temp_into_place(tmp_path, umask_022):
    path = tmp_path / "sub" / "camera.json"
    with atomic_file(path) as tmp:
        assert tmp.parent == path.parent and tmp != path
        assert not path.exists()  # nothing visible before the body ends
        tmp.write_text("new")
    assert path.read_text() == "new"
    assert names(path.parent) == ["camera.json"]
    # The permissions of any new file (mkstemp alone would leave 0600).
    assert path.stat().st_mode & 0o777 == 0o644


def test_atomic_file_failure_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "head.npz"
    path.write_text("old")
    with pytest.raises(Boom), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise Boom
    assert path.read_text() == "old"
    assert names(tmp_path) == ["head.npz"]


# --- atomic_directory ----------------------------------------------------------------------

def test_atomic_directory_publishes_a_new_directory(tmp_path, umask_022):
    out = tmp_path / "results"
    with atomic_directory(out, overwrite=False) as tmp:
        assert tmp.is_dir() and not any(tmp.iterdir()) and tmp.parent == tmp_path
        (tmp / "result.json").write_text("new")
        assert not out.exists()
    assert names(out) == ["result.json"]
    assert names(tmp_path) == ["results"]
    assert out.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700


def test_atomic_directory_refuses_to_replace_without_overwrite(tmp_path):
    out = make_output(tmp_path / "results", "old")
    with pytest.raises(FileExistsError, match="not replaced"), \
            atomic_directory(out, overwrite=False) as tmp:
        (tmp / "result.json").write_text("new")
    assert names(out) == ["old.txt", "result.json"]
    assert (out / "result.json").read_text() == "old"
    assert names(tmp_path) == ["results"]


def test_atomic_directory_replaces_with_overwrite_only_when_complete(tmp_path):
    out = make_output(tmp_path / "results", "old")
    make_output(tmp_path / ".results.old", "stale")  # left by an earlier crash mid-swap
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "result.json").write_text("new")
        # While the new output is being written, the old one is still whole.
        assert names(out) == ["old.txt", "result.json"]
    assert names(out) == ["result.json"]
    assert (out / "result.json").read_text() == "new"
    assert names(tmp_path) == ["results"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_atomic_directory_failure_mid_write_leaves_the_old_directory(tmp_path, overwrite):
    out = make_output(tmp_path / "results", "old")
    with pytest.raises(Boom), atomic_directory(out, overwrite=overwrite) as tmp:
        (tmp / "tracking.npz").write_text("half")
        (tmp / "textures").mkdir()
        raise Boom
    assert names(out) == ["old.txt", "result.json"]
    assert names(tmp_path) == ["results"]


def test_atomic_directory_failure_without_an_old_directory_leaves_nothing(tmp_path):
    with pytest.raises(Boom), atomic_directory(tmp_path / "results", overwrite=True) as tmp:
        (tmp / "tracking.npz").write_text("half")
        raise Boom
    assert names(tmp_path) == []


def test_overwriting_a_file_leaves_no_old_copy(tmp_path):
    out = tmp_path / "results"
    out.write_text("a file where the results go")
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "result.json").write_text("new")
    assert names(out) == ["result.json"]
    assert names(tmp_path) == ["results"]


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no signal masks on this OS")
def test_a_signal_during_the_swap_waits_until_both_renames_are_done(tmp_path, monkeypatch):
    """SIGTERM (Blender's Cancel) arriving between the two renames would leave neither output:
    it is held until the new directory is in place."""
    out = make_output(tmp_path / "results", "old")
    seen_by_handler: list[list[str]] = []
    real_replace = os.replace

    def replace_then_signal(source, target):
        real_replace(source, target)
        if not seen_by_handler and Path(target).name == ".results.old":
            os.kill(os.getpid(), signal.SIGTERM)  # between the two renames

    def handler(signum, frame):
        seen_by_handler.append(names(out) if out.exists() else [])

    monkeypatch.setattr(os, "replace", replace_then_signal)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with atomic_directory(out, overwrite=True) as tmp:
            (tmp / "result.json").write_text("new")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen_by_handler == [["result.json"]]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # mask restored


def test_without_signal_masks_windows_style_it_still_publishes(tmp_path, monkeypatch):
    """Windows' `signal` has no pthread_sigmask: the swap must not call it there."""
    monkeypatch.delattr(signal, "pthread_sigmask", raising=False)
    out = make_output(tmp_path / "results", "old")
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "result.json").write_text("new")
    assert (out / "result.json").read_text() == "new"
    assert names(out) == ["result.json"]
    with pytest.raises(Boom), atomic_directory(out, overwrite=True) as tmp:
        raise Boom
    assert names(tmp_path) == ["results"]
    with atomic_file(tmp_path / "camera.json") as tmp:
        tmp.write_text("{}")
    assert names(tmp_path) == ["camera.json", "results"]
