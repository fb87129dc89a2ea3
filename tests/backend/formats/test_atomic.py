"""Atomic publishing: a reader sees the old output or the complete new one, never a part, and
nothing temporary is left behind, whatever fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from backend.formats.atomic import (
    DirectoryKind,
    atomic_directory,
    atomic_file,
    check_replaceable_file,
    release_dead_writer,
)
from backend.formats.errors import BadInput

REPO_ROOT = Path(__file__).resolve().parents[3]


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
    out = tmp_path / "results"
    with pytest.raises(FileExistsError, match="not replaced"), \
            atomic_directory(out, overwrite=False) as tmp:
        make_output(out, "old")  # appeared while writing (an existing one is refused on entry)
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
    out = tmp_path / "results"
    if overwrite:
        make_output(out, "old")
    with pytest.raises(Boom), atomic_directory(out, overwrite=overwrite) as tmp:
        if not overwrite:
            make_output(out, "old")  # appeared while writing (an existing one is refused on entry)
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


@pytest.mark.parametrize("other_thread", [False, True])
def test_a_signal_during_the_swap_waits_until_both_renames_are_done(tmp_path, monkeypatch,
                                                                   other_thread):
    """SIGTERM (Blender's Cancel) arriving between the two renames would leave neither output:
    its handler runs only once the new directory is in place, also in a process with other
    threads (the backend's torch workers), which a signal mask on this thread does not cover."""
    out = make_output(tmp_path / "results", "old")
    seen_by_handler: list[list[str]] = []
    real_replace = os.replace

    def replace_then_signal(source, target):
        real_replace(source, target)
        if Path(target).name == ".results.old":  # between the two renames
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # time for whichever thread the kernel picks to take the signal

    def handler(signum, frame):
        seen_by_handler.append(names(tmp_path))

    monkeypatch.setattr(os, "replace", replace_then_signal)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    if other_thread:
        worker.start()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with atomic_directory(out, overwrite=True) as tmp:
            (tmp / "result.json").write_text("new")
        assert signal.getsignal(signal.SIGTERM) is handler  # restored after the swap
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop.set()
    assert seen_by_handler == [["results"]]
    assert names(out) == ["result.json"]


def test_a_terminated_process_leaves_the_complete_new_output(tmp_path):
    """Outside the backend's Cancel handler SIGTERM kills the process: it dies after the swap,
    with the new output in place and nothing set aside."""
    out = make_output(tmp_path / "results", "old")
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from backend.formats.atomic import atomic_directory
        real_replace = os.replace
        def replace_then_signal(source, target):
            real_replace(source, target)
            if Path(target).name == ".results.old":
                os.kill(os.getpid(), signal.SIGTERM)
        os.replace = replace_then_signal
        with atomic_directory(Path({str(out)!r}), overwrite=True) as tmp:
            (tmp / "result.json").write_text("new")
        print("survived SIGTERM")
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert "survived" not in done.stdout
    assert (out / "result.json").read_text() == "new"
    assert names(tmp_path) == ["results"]


def test_without_signal_masks_windows_style_it_still_publishes(tmp_path, monkeypatch):
    """Windows' `signal` has no pthread_sigmask (nor other POSIX-only calls): the swap must
    not need it."""
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


# --- what an output may replace, claiming it, stale temps (issue 11) ------------------------

RESULTS_LIKE = DirectoryKind("FaceAdapt results directory", "result.json", "schema",
                             frozenset({"result.json", "tracking.npz"}))


def make_results(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "result.json").write_text('{"schema": 1}')
    (path / "tracking.npz").write_text("arrays")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_overwrite_replaces_a_directory_of_its_kind(tmp_path):
    out = make_results(tmp_path / "results")
    with atomic_directory(out, overwrite=True, kind=RESULTS_LIKE) as tmp:
        (tmp / "result.json").write_text('{"schema": 1, "new": true}')
    assert "new" in (out / "result.json").read_text()
    assert names(tmp_path) == ["results"]


@pytest.mark.parametrize("case", ["other files", "no marker", "foreign marker", "a file"])
def test_overwrite_never_replaces_what_is_not_of_its_kind(tmp_path, case):
    out = tmp_path / "results"
    if case == "a file":
        out.write_text("someone's file")
    else:
        make_results(out)
        if case == "other files":
            (out / "holiday.mov").write_text("irreplaceable")
        elif case == "no marker":
            (out / "result.json").unlink()
        else:
            (out / "result.json").write_text('{"title": "my essay"}')
    before = snapshot(tmp_path)
    with pytest.raises(BadInput, match=str(out)), \
            atomic_directory(out, overwrite=True, kind=RESULTS_LIKE):
        pytest.fail("the body ran: the refusal must come before any work")
    assert snapshot(tmp_path) == before
    assert names(tmp_path) == ["results"]


@pytest.mark.parametrize("where", ["the input itself", "the folder holding the input"])
def test_overwrite_never_replaces_the_input(tmp_path, where):
    shots = tmp_path / "shots"
    shots.mkdir()
    footage = shots / "clip"
    make_results(footage)  # even one that looks like results
    out = footage if where == "the input itself" else shots
    before = snapshot(tmp_path)
    with pytest.raises(BadInput, match="holds the input"), \
            atomic_directory(out, overwrite=True, kind=None, inputs=[footage]):
        pytest.fail("the body ran")
    assert snapshot(tmp_path) == before


def test_a_second_writer_of_the_same_path_is_refused_on_entry(tmp_path):
    out = tmp_path / "results"
    with atomic_directory(out, overwrite=True, kind=RESULTS_LIKE) as first:
        with pytest.raises(BadInput, match=f"pid {os.getpid()}"), \
                atomic_directory(out, overwrite=True, kind=RESULTS_LIKE):
            pytest.fail("the body ran")
        (first / "result.json").write_text('{"schema": 1}')
    assert names(out) == ["result.json"]
    assert names(tmp_path) == ["results"]


def test_temp_names_are_unique_per_run_and_name_their_process(tmp_path):
    with atomic_directory(tmp_path / "a", overwrite=False) as one, \
            atomic_directory(tmp_path / "b", overwrite=False) as two:
        assert f"pid{os.getpid()}." in one.name and one.name.endswith(".partial")
        assert one.name.removeprefix(".a") != two.name.removeprefix(".b")
    with atomic_file(tmp_path / "c.json") as tmp:
        assert f"pid{os.getpid()}." in tmp.name
        tmp.write_text("{}")


def test_a_lock_and_partial_folder_of_a_dead_process_are_swept_live_ones_kept(tmp_path):
    out = tmp_path / "results"
    gone = dead_pid()
    (tmp_path / ".results.lock").write_text(str(gone))
    stale = tmp_path / f".results.pid{gone}.x1y2.partial"
    (stale / "textures").mkdir(parents=True)
    stale_file = tmp_path / f".results.pid{gone}.k3.tmp.json"
    stale_file.write_text("half")
    live = tmp_path / f".results.pid{os.getppid()}.z9.partial"  # its owner (pytest's parent) lives
    live.mkdir()
    other = tmp_path / ".notes.pid1.partial"  # another output's: not this path's to sweep
    other.mkdir()
    with atomic_directory(out, overwrite=False) as tmp:
        (tmp / "result.json").write_text("new")
    assert names(tmp_path) == sorted([".notes.pid1.partial", live.name, "results"])


def test_an_unwritable_parent_is_bad_input_on_entry(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(BadInput, match="cannot create its folder"), \
            atomic_directory(blocker / "results", overwrite=False):
        pytest.fail("the body ran")
    assert blocker.read_text() == "a file, not a folder"


def test_a_single_file_output_never_replaces_a_folder(tmp_path):
    folder = make_results(tmp_path / "head.npz")
    with pytest.raises(BadInput, match="is a folder"):
        check_replaceable_file(folder, overwrite=True)
    (tmp_path / "h.npz").write_text("old")
    with pytest.raises(BadInput, match="--overwrite"):
        check_replaceable_file(tmp_path / "h.npz", overwrite=False)
    check_replaceable_file(tmp_path / "h.npz", overwrite=True)
    check_replaceable_file(tmp_path / "new.npz", overwrite=False)


def test_a_dead_writer_on_another_machine_is_released_by_whoever_knows_it_died(tmp_path):
    # What a farm worker killed on another node leaves on shared storage: its lock and its temp
    # folder, under a pid this machine may give to a live process of its own.
    out = tmp_path / "sh010"
    other = 4_000_000  # no such pid here
    (tmp_path / ".sh010.lock").write_text(str(other))
    (tmp_path / f".sh010.pid{other}.abc.partial").mkdir()
    (tmp_path / f".sh010.pid{other}.abc.partial" / "tracking.npz").write_bytes(b"half")
    (tmp_path / f".sh010.pid{other + 1}.def.partial").mkdir()  # another writer's: kept
    release_dead_writer(out, other)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".sh010.pid{other + 1}.def.partial"]
    (tmp_path / ".sh010.lock").write_text(str(other + 1))  # a lock that is not the dead writer's stays
    release_dead_writer(out, other)
    assert (tmp_path / ".sh010.lock").read_text() == str(other + 1)
