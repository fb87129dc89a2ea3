"""`bench adapt` measures what it says: one measured process per run, the adapted runs beside
the landmark fit at the same lengths with their ratio, and bad lists refused before any run."""

from __future__ import annotations

import pytest

from backend.bench.adapt_bench import BenchAdaptConfig, bench_adapt
from backend.events import EventSink
from backend.formats.errors import BadInput


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lengths", "50,x", "comma-separated whole numbers"),
    ("lengths", "1,5", "at least 2"),
    ("texels", "4", "--adapt-texels 4"),
])
def test_bad_lists_are_refused_before_any_run(field, value, message):
    with pytest.raises(BadInput, match=message):
        BenchAdaptConfig(**{field: value})


@pytest.mark.data
def test_a_tiny_run_reports_every_run_and_the_ratio(data_dir):
    report = bench_adapt(BenchAdaptConfig(footage=data_dir / "videos/lp_driving_d0.mp4", lengths="2,3",
                                          texels="32", passes=1.0), EventSink(json_lines=False))
    runs = [(r["tracker"], r["frames"], r["texels"]) for r in report["runs"]]
    assert runs == [("landmark-fit", 2, None), ("landmark-fit", 3, None), ("adapted", 2, 64),
                    ("adapted", 3, 64), ("adapted", 3, 32)]
    for run in report["runs"]:
        assert run["wall_s"] > 0 and run["peak_mib"] > 100 and run["frames_tracked"] == run["frames"]
        if run["tracker"] == "adapted":
            assert run["adaptation_steps"] >= 1 and run["adaptation_s_per_frame"] >= 0
            assert run["refine_steps"] == 0  # the default adapts without refining (--adapt-refine-passes)
            assert run["wall_ratio_to_landmark_fit"] > 0


@pytest.mark.data
def test_lengths_beyond_the_footage_are_refused(data_dir):
    with pytest.raises(BadInput, match="has only"):
        bench_adapt(BenchAdaptConfig(footage=data_dir / "videos/lp_driving_d0.mp4", lengths="2,100000"),
                    EventSink(json_lines=False))
