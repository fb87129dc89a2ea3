"""The backend client against a real subprocess: a small script stands in for the backend's
interpreter (`<python> -m backend ARGS --events`) and prints event lines, library banners and
garbage the way a real backend can (DESIGN.md "Process boundary")."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from faceadapt.blender_addon.backend_client import (
    EXTENSION_ROOT,
    BackendFailure,
    BackendRun,
    Progress,
    start_backend,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in runs through a shebang")

# argv: -m backend SCENARIO [FOLDER] --events. FOLDER is where the stand-in leaves pids and
# waits for a `go` file, so a test can act while it runs.
STAND_IN = textwrap.dedent("""\
    import json, os, signal, subprocess, sys, time

    args = sys.argv[1:]
    assert args[:2] == ["-m", "backend"] and args[-1] == "--events", args
    scenario, folder = args[2], (args[3] if len(args) > 4 else None)

    def emit(event, **fields):
        print(json.dumps({"event": event, **fields}), flush=True)

    def wait_for_go():
        while not os.path.exists(os.path.join(folder, "go")):
            time.sleep(0.01)

    if scenario == "success":
        print("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", flush=True)
        print("W0000 00:00:1 inference_feedback_manager.cc:114] Feedback manager requires",
              file=sys.stderr, flush=True)
        emit("log", message="tracking clip.mp4 frames 0-3")
        emit("progress", stage="detect", done=4, total=4, eta_s=0.0)
        print('{"not": "an event"}', flush=True)
        print("{broken json", flush=True)
        print("[1, 2, 3]", flush=True)
        emit("progress", stage="fit", done=2, total=4, eta_s=3.2)
        wait_for_go()
        emit("warning", message="2 frame(s) without a face")
        emit("progress", stage="fit", done=4, total=4, eta_s=0.0)
        emit("result", path="/results/clip")
    elif scenario == "echo":
        emit("result", path=json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                                        "pythonpath": os.environ.get("PYTHONPATH", "")}))
    elif scenario == "no_face":
        emit("progress", stage="detect", done=1, total=4, eta_s=None)
        emit("error", kind="no_face", message="no face found in any frame of clip.mp4")
        sys.exit(3)
    elif scenario == "crash":
        print("Traceback (most recent call last):", file=sys.stderr)
        print("RuntimeError: boom", file=sys.stderr, flush=True)
        sys.exit(1)
    elif scenario == "silent":
        print("all done", flush=True)
    elif scenario == "result_then_failure":
        emit("result", path="/results/clip")
        sys.exit(4)
    elif scenario == "cancellable":
        def stop(signum, frame):
            emit("error", kind="cancelled", message="cancelled; temp output removed")
            sys.exit(130)
        signal.signal(signal.SIGTERM, stop)
        emit("progress", stage="fit", done=1, total=100, eta_s=60.0)
        while True:
            time.sleep(0.01)
    elif scenario == "counts_sigterm":
        # Like the real backend: the first SIGTERM starts removing temp output, which takes a
        # while; every SIGTERM is counted.
        received = []
        signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
        emit("progress", stage="fit", done=1, total=100)
        while not received:
            time.sleep(0.01)
        time.sleep(0.5)
        emit("error", kind="cancelled", message=f"cancelled after {len(received)} SIGTERM")
        sys.exit(130)
    elif scenario == "garbage_stdout":
        sys.stdout.buffer.write(b"\\xff\\xfe\\x00 not utf-8 \\xc3\\x28\\n")
        sys.stdout.flush()
        emit("result", path="/results/clip")
    elif scenario == "garbage_stderr":
        sys.stderr.buffer.write(b"\\xff\\xfe not utf-8\\n")
        sys.stderr.buffer.write(b"a long library log line\\n" * 20000)  # beyond a pipe's buffer
        sys.stderr.flush()
        emit("result", path="/results/clip")
    elif scenario == "malformed_event":
        emit("progress", stage="fit", done="many", total=None)
        emit("result", path="/results/clip")
    elif scenario == "malformed_events":
        emit("progress", stage="fit", done=1, total=4)
        emit("progress", stage=["fit"], done=2, total=4)
        emit("warning", message={"text": "not text"})
        emit("error", kind="no_face", message=None)
        emit("result")
        emit("result", path=7)
        emit("progress", stage="fit", done=4, total=4)
        emit("result", path="/results/clip")
    elif scenario == "goes_silent":
        emit("progress", stage="fit", done=1, total=100)
        time.sleep(60)
    elif scenario == "keeps_logging":
        emit("progress", stage="fit", done=1, total=2)
        for _ in range(30):  # 3 s of library output with no event, longer than the test's limit
            print("still working", file=sys.stderr, flush=True)
            time.sleep(0.1)
        emit("result", path="/results/clip")
    elif scenario == "leaves_child":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(os.path.join(folder, "child.pid"), "w") as f:
            f.write(str(child.pid))
        emit("result", path="/results/clip")
    elif scenario == "child_leaves_group":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 start_new_session=True)
        with open(os.path.join(folder, "child.pid"), "w") as f:
            f.write(str(child.pid))
        emit("result", path="/results/clip")
    elif scenario == "ignores_sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit("progress", stage="fit", done=1, total=100)
        while True:
            time.sleep(0.01)
    elif scenario == "with_child":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(os.path.join(folder, "child.pid"), "w") as f:
            f.write(str(child.pid))
        emit("progress", stage="render", done=0, total=10)
        child.wait()
    else:
        sys.exit(f"unknown scenario {scenario}")
    """)


@pytest.fixture
def backend_python(tmp_path: Path) -> Path:
    """An executable standing in for the backend's interpreter."""
    path = tmp_path / "python"
    path.write_text(f"#!{sys.executable}\n{STAND_IN}")
    path.chmod(0o755)
    return path


def until(condition, run: BackendRun, timeout: float = 20.0) -> None:
    """Poll the run until `condition()`; kill the stand-in and fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            run.process.kill()
            pytest.fail(f"not reached within {timeout} s (exit code {run.process.poll()})")
        time.sleep(0.01)


def finish(run: BackendRun, timeout: float = 20.0) -> str:
    """The run's outcome once the client sees it end, failing instead of hanging."""
    until(run.poll, run, timeout)
    return run.outcome()


def test_progress_warnings_and_result_are_read_and_other_lines_ignored(backend_python, tmp_path):
    run = start_backend(backend_python, ["success", str(tmp_path)])
    # While it runs: the latest progress, and not ended.
    until(lambda: run.poll() or run.progress.stage == "fit", run)
    assert not run.poll()
    assert run.progress == Progress("fit", 2, 4, 3.2)
    assert run.progress.describe() == "fit 2/4, ETA 3 s"
    assert run.progress.fraction == 0.5
    assert run.result is None and run.warnings == []
    (tmp_path / "go").touch()
    assert finish(run) == "/results/clip"
    assert run.progress == Progress("fit", 4, 4, 0.0)
    assert run.warnings == ["2 frame(s) without a face"]
    assert run.error is None
    assert any("Feedback manager" in line for line in run.stderr_tail)


def test_the_command_line_and_environment(backend_python):
    run = start_backend(backend_python, ["echo", "--frames", "0-3"])
    seen = json.loads(finish(run))
    assert seen["argv"] == ["-m", "backend", "echo", "--frames", "0-3", "--events"]
    assert Path(seen["cwd"]) == EXTENSION_ROOT
    assert seen["pythonpath"].split(os.pathsep)[0] == str(EXTENSION_ROOT)
    assert run.command == [str(backend_python), "-m", "backend", "echo", "--frames", "0-3", "--events"]


def test_an_error_event_becomes_the_failure(backend_python):
    run = start_backend(backend_python, ["no_face"])
    with pytest.raises(BackendFailure) as failure:
        finish(run)
    assert failure.value.kind == "no_face"
    assert failure.value.message == "no face found in any frame of clip.mp4"
    assert run.progress.describe() == "detect 1/4"


def test_a_non_zero_exit_without_a_result_reports_the_code_and_stderr(backend_python):
    run = start_backend(backend_python, ["crash"])
    with pytest.raises(BackendFailure) as failure:
        finish(run)
    assert failure.value.kind == "internal"
    assert "exited with code 1 without a result" in failure.value.message
    assert "RuntimeError: boom" in failure.value.message


@pytest.mark.parametrize(("scenario", "code"), [("silent", 0), ("result_then_failure", 4)])
def test_success_needs_both_a_result_and_exit_code_zero(backend_python, scenario, code):
    run = start_backend(backend_python, [scenario])
    with pytest.raises(BackendFailure, match=f"exited with code {code} without a result") as failure:
        finish(run)
    assert failure.value.kind == "internal"


def test_cancel_terminates_the_backend(backend_python):
    run = start_backend(backend_python, ["cancellable"])
    until(lambda: run.poll() or run.progress.stage == "fit", run)
    run.cancel()
    with pytest.raises(BackendFailure) as failure:
        finish(run, timeout=10)
    assert failure.value.kind == "cancelled"
    assert failure.value.message == "cancelled; temp output removed"
    assert run.process.returncode == 130
    run.cancel()  # cancelling an ended run is harmless


def test_an_interpreter_that_cannot_start_is_bad_input(tmp_path):
    with pytest.raises(BackendFailure, match="cannot start the backend interpreter") as failure:
        start_backend(tmp_path / "no-such-python", ["track"])
    assert failure.value.kind == "bad_input"
    assert "Install Backend" in failure.value.message


def test_progress_description():
    assert Progress().describe() == "starting backend"
    assert Progress().fraction == 0.0
    assert Progress("detect", 3, 12).describe() == "detect 3/12"
    assert Progress("fit", 30, 40, 12.4).fraction == 0.75


# --- DESIGN.md "Process boundary": the faults found in issue 11 -----------------------------

def test_wait_asks_the_backend_to_stop_once(backend_python):
    run = start_backend(backend_python, ["counts_sigterm"])
    until(lambda: run.poll() or run.progress.stage == "fit", run)
    with pytest.raises(BackendFailure, match=r"cancelled after 1 SIGTERM$"):
        run.wait(should_cancel=lambda: True, interval=0.01)


def test_bytes_that_are_not_utf8_on_stdout_are_survived(backend_python):
    assert finish(start_backend(backend_python, ["garbage_stdout"])) == "/results/clip"


def test_bytes_that_are_not_utf8_on_stderr_are_survived(backend_python):
    assert finish(start_backend(backend_python, ["garbage_stderr"]), timeout=5) == "/results/clip"


def test_a_malformed_event_is_survived(backend_python):
    assert finish(start_backend(backend_python, ["malformed_event"])) == "/results/clip"


def test_cancel_stops_a_backend_that_ignores_sigterm(backend_python):
    run = start_backend(backend_python, ["ignores_sigterm"])
    until(lambda: run.poll() or run.progress.stage == "fit", run)
    run.cancel()
    try:  # a grace period of less than 10 s
        until(lambda: run.process.poll() is not None, run, timeout=10)
    finally:
        run.process.kill()
        run.process.wait()


def test_cancel_stops_the_backends_children(backend_python, tmp_path):
    run = start_backend(backend_python, ["with_child", str(tmp_path)])
    pid_file = tmp_path / "child.pid"
    until(lambda: pid_file.is_file() and pid_file.read_text(), run)
    child = int(pid_file.read_text())
    try:
        run.cancel()
        with pytest.raises(BackendFailure):
            finish(run, timeout=5)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the backend's child process survived Cancel"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def test_a_malformed_event_is_reported_as_a_warning(backend_python):
    run = start_backend(backend_python, ["malformed_event"])
    assert finish(run) == "/results/clip"
    assert run.progress == Progress()  # the malformed progress did not replace it
    assert len(run.warnings) == 1
    assert run.warnings[0].startswith("ignored a malformed backend event ('done' is 'many', not a count)")


def test_events_with_missing_or_wrongly_typed_fields_are_ignored(backend_python):
    run = start_backend(backend_python, ["malformed_events"])
    assert finish(run) == "/results/clip"
    assert run.progress == Progress("fit", 4, 4)
    assert run.error is None
    faults = [warning.split(")", 1)[0] for warning in run.warnings]
    assert faults == ["ignored a malformed backend event ('stage' is list, not text",
                      "ignored a malformed backend event ('message' is dict, not text",
                      "ignored a malformed backend event ('message' is NoneType, not text",
                      "ignored a malformed backend event (a result without a 'path'",
                      "ignored a malformed backend event ('path' is int, not text"]


def test_a_result_without_a_path_is_no_result(backend_python, tmp_path):
    script = tmp_path / "python"
    script.write_text(f"#!{sys.executable}\nimport json\nprint(json.dumps({{'event': 'result'}}))\n")
    script.chmod(0o755)
    run = start_backend(script, ["track"])
    with pytest.raises(BackendFailure, match="exited with code 0 without a result"):
        finish(run)
    assert run.warnings[0].startswith("ignored a malformed backend event (a result without a 'path')")


def test_watchdog_stops_a_backend_that_stopped_reporting(backend_python):
    run = start_backend(backend_python, ["goes_silent"], silence_limit_s=1.0)
    started = time.monotonic()
    with pytest.raises(BackendFailure) as failure:
        run.wait(interval=0.01)
    assert time.monotonic() - started < 10, "the watchdog did not stop the silent backend"
    assert failure.value.kind == "internal"
    assert failure.value.message.startswith("the backend reported nothing (no progress, no output) "
                                            "for 1 s during 'fit 1/100', so it was taken for stuck "
                                            "and stopped")
    assert run.process.returncode == -signal.SIGTERM


def test_watchdog_lets_a_long_run_that_keeps_reporting_finish(backend_python):
    run = start_backend(backend_python, ["keeps_logging"], silence_limit_s=1.0)
    assert run.wait(interval=0.01) == "/results/clip"
    assert run.stalled_after_s is None
    assert list(run.stderr_tail).count("still working") == 30


def test_watchdog_kills_a_silent_backend_that_ignores_sigterm(backend_python):
    run = start_backend(backend_python, ["ignores_sigterm"], silence_limit_s=1.0)
    run.stop_grace_s = 0.5
    with pytest.raises(BackendFailure, match="taken for stuck and stopped"):
        run.wait(interval=0.01)
    assert run.process.returncode == -signal.SIGKILL


def test_an_interrupted_wait_stops_the_backend(backend_python):
    run = start_backend(backend_python, ["cancellable"])

    def interrupt(progress: Progress) -> None:
        if progress.stage == "fit":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.wait(on_progress=interrupt, interval=0.01)
    with pytest.raises(BackendFailure) as failure:
        finish(run, timeout=10)
    assert failure.value.kind == "cancelled"


def test_a_child_left_behind_by_a_finished_backend_is_stopped(backend_python, tmp_path):
    run = start_backend(backend_python, ["leaves_child", str(tmp_path)])
    try:
        assert finish(run, timeout=5) == "/results/clip"
        child = int((tmp_path / "child.pid").read_text())
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the finished backend's child process survived"
    finally:
        pid_file = tmp_path / "child.pid"
        if pid_file.is_file() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_progress_beyond_its_total_fills_the_bar_only():
    assert Progress("fit", 5, 4).fraction == 1.0


def test_a_child_outside_the_group_holding_the_pipes_does_not_hang_the_run(backend_python, tmp_path):
    run = start_backend(backend_python, ["child_leaves_group", str(tmp_path)])
    run.stop_grace_s = 0.5
    try:
        assert finish(run, timeout=5) == "/results/clip"
        assert run.warnings == ["a process started by the backend still holds its output open; "
                                "it was left running"]
        assert run.poll()  # polled again: ended, and said once
        assert len(run.warnings) == 1
    finally:
        pid_file = tmp_path / "child.pid"
        if pid_file.is_file() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
