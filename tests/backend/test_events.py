import io
import json

from backend.events import EventSink


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


def test_human_progress_goes_to_stderr_not_stdout():
    out, err = io.StringIO(), io.StringIO()
    sink = EventSink(json_lines=False, out=out, err=err)
    sink.progress("fit", 5, 5)
    sink.log("hello")
    assert out.getvalue() == "" and "fit: 5/5" in err.getvalue() and "hello" in err.getvalue()
