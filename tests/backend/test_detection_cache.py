"""The detections stage cache: an entry is reused only when it fits the frames asked for."""

from __future__ import annotations

import numpy as np

from backend.detection_cache import cached_detections
from backend.events import EventSink
from backend.trackers.interface import Detections


def _detections(frames: int) -> Detections:
    return Detections(np.ones((frames, 68, 2), np.float32), np.ones((frames, 68), np.float32),
                      np.ones(frames, bool))


def test_an_entry_is_reused_only_for_the_frames_it_holds():
    sink = EventSink(json_lines=False)
    calls = []

    def detect(frames: int):
        return lambda: calls.append(frames) or _detections(frames)

    cached_detections("k" * 64, 3, detect(3), sink)
    again = cached_detections("k" * 64, 3, detect(3), sink)
    assert calls == [3] and again.points.shape == (3, 68, 2)
    shorter = cached_detections("k" * 64, 2, detect(2), sink)  # an entry of other shapes
    assert calls == [3, 2] and shorter.points.shape == (2, 68, 2)


def test_an_entry_with_non_finite_points_is_detected_again():
    sink = EventSink(json_lines=False)
    bad = _detections(2)
    bad.points[0, 0] = np.nan
    cached_detections("n" * 64, 2, lambda: bad, sink)
    fresh = cached_detections("n" * 64, 2, lambda: _detections(2), sink)
    assert np.isfinite(fresh.points).all()
