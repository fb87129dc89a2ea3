"""`bench capture` times one view of a head in the backend's renderer and in Blender's EEVEE and
Cycles from the same cameras, and refuses settings it cannot time."""

from __future__ import annotations

import pytest

from backend.bench.capture_bench import PERSONAL_CAPTURE_VIEWS, BenchCaptureConfig, bench_capture
from backend.events import EventSink
from backend.formats.errors import BadInput


@pytest.mark.blender
def test_every_renderer_is_timed_on_the_same_views(default_head):
    report = bench_capture(BenchCaptureConfig(views=2, size=32, samples=1), EventSink(False))
    seconds = report["seconds_per_view"]
    assert set(seconds) == {"backend", "eevee", "cycles"} and all(v > 0 for v in seconds.values())
    for name, value in seconds.items():
        assert report["personal_capture_minutes"][name] == pytest.approx(
            value * PERSONAL_CAPTURE_VIEWS / 60, abs=0.06)
    backend_only = bench_capture(BenchCaptureConfig(views=1, size=32, engines=""), EventSink(False))
    assert set(backend_only["seconds_per_view"]) == {"backend"}


def test_settings_it_cannot_time_are_refused():
    with pytest.raises(BadInput, match="--engines: unknown workbench"):
        BenchCaptureConfig(engines="eevee,workbench")
    with pytest.raises(BadInput, match="at least 1 view"):
        BenchCaptureConfig(views=0)
