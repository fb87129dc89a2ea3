import io
import json
import os
import signal
import textwrap
import time

import pytest

from backend.events import EventSink, cancellable
from backend.formats.errors import Cancelled


def test_eta_counts_from_the_first_report_of_a_stage(monkeypatch):
    clock = iter([0.0, 2.0, 4.0])
    monkeypatch.setattr("backend.events.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    sink = EventSink(json_lines=True, out=out)
    sink.progress("train", 3000, 4000)  # a resumed stage starts high
    sink.progress("train", 3100, 4000)
    sink.progress("train", 3200, 4000)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[0]["eta_s"] is None
    assert events[-1]["eta_s"] == 16.0  # 200 units in 4 s, 800 to go


def test_a_stage_run_again_in_one_process_gets_its_own_eta(monkeypatch):
    # The demo writes textures for two trackers: the second run's rate is its own.
    clock = iter([0.0, 1.0, 100.0, 101.0])
    monkeypatch.setattr("backend.events.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    sink = EventSink(json_lines=True, out=out)
    sink.progress("textures", 0, 10)
    sink.progress("textures", 10, 10)
    sink.progress("textures", 0, 10)
    sink.progress("textures", 5, 10)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[-1]["eta_s"] == 1.0  # 5 units in 1 s, 5 to go (not from the first run's start)


def test_human_progress_goes_to_stderr_not_stdout():
    out, err = io.StringIO(), io.StringIO()
    sink = EventSink(json_lines=False, out=out, err=err)
    sink.progress("fit", 5, 5)
    sink.log("hello")
    assert out.getvalue() == "" and "fit: 5/5" in err.getvalue() and "hello" in err.getvalue()


def test_progress_carries_an_optimisations_figures_in_both_forms():
    out, err = io.StringIO(), io.StringIO()
    EventSink(json_lines=True, out=out).progress("adapt", 1, 2, values={"landmark": 0.25})
    EventSink(json_lines=False, out=io.StringIO(), err=err).progress("adapt", 2, 2, values={"landmark": 0.25})
    assert json.loads(out.getvalue())["values"] == {"landmark": 0.25}
    assert "adapt: 2/2" in err.getvalue() and "landmark 0.25" in err.getvalue()


def test_a_second_cancel_signal_during_cleanup_is_ignored():
    """The report: Esc pressed twice killed the backend with -15 in the middle of its cleanup.
    The first SIGTERM raises Cancelled; one during the cleanup that follows changes nothing."""
    cleaned = []
    with pytest.raises(Cancelled, match="SIGTERM"), cancellable():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
            pytest.fail("not cancelled")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the second Esc, during cleanup
            time.sleep(0.2)
            cleaned.append(True)
    assert cleaned == [True]


def test_sighup_cancels_like_sigterm():
    """The report: SIGHUP (a closed terminal or ssh session) was not trapped."""
    with pytest.raises(Cancelled, match="SIGHUP"), cancellable():
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(1)


def test_a_cancel_inside_an_import_is_delivered_once_the_import_is_done(tmp_path, monkeypatch):
    """The report (found while fixing SIGTERM in the first second): Cancelled raised inside an
    import was swallowed by a library's `except Exception` around it, leaving numpy without
    `matrix` and an internal error instead of the cancel."""
    (tmp_path / "library_with_optional_part.py").write_text(textwrap.dedent("""
        import os, signal, time
        swallowed = []
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)
        except Exception as exc:  # what libraries do around optional imports
            swallowed.append(exc)
        complete = True
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(Cancelled), cancellable():
        import library_with_optional_part as library

        time.sleep(1)
        pytest.fail("not cancelled")
    assert library.swallowed == [] and library.complete
