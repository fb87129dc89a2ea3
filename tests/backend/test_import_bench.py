"""`bench import` imports a synthetic performance in each geometry mode and reports what it
measured; the synthetic results are a valid results directory of the head it made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.bench.import_bench import BenchImportConfig, bench_import, recommended_mode
from backend.bench.synthetic_performance import save_synthetic_head, write_synthetic_results
from backend.events import EventSink
from backend.formats.errors import BadInput
from backend.formats.results_dir import check_topology, read_results


def test_synthetic_results_are_valid_and_move(tmp_path: Path):
    head = save_synthetic_head(tmp_path / "head.npz", 400)
    results = read_results(write_synthetic_results(tmp_path / "results", head, 12))
    check_topology(results, "the synthetic head", len(head.vertices), head.topology_hash)
    assert results.vertices.shape == (12, 400, 3)
    assert np.ptp(results.tracking["weights"], axis=0).max() > 0.1  # the face moves


@pytest.mark.parametrize(("field", "value"), [("modes", "arkit,blend"), ("frames", "10,x"),
                                              ("frames", "0")])
def test_bad_lists_are_refused(field: str, value: str):
    with pytest.raises(BadInput):
        BenchImportConfig(**{field: value})


def test_recommendation_follows_the_size_as_the_panel_does():
    from faceadapt.blender_addon.geometry_plan import recommended_mode as panel_recommendation

    assert recommended_mode(250, 10_000) == "shape-keys"
    assert recommended_mode(1000, 10_000) == "point-cache"
    for frames in (1, 250, 251, 1000, 5000, 100_000):
        assert recommended_mode(frames, 10_000) == panel_recommendation(frames, 10_000)


@pytest.mark.blender
def test_a_tiny_run_imports_each_mode():
    report = bench_import(BenchImportConfig(frames="6", vertices=400, modes="arkit,point-cache"),
                          EventSink(json_lines=False))
    rows = {row["mode"]: row for row in report["rows"]}
    assert set(rows) == {"arkit", "point-cache"}
    for row in rows.values():
        assert row["result"] == ["FINISHED"] and row["frames"] == 6
        assert row["playback_fps"] > 0 and row["blend_mib"] > 0
    assert rows["point-cache"]["side_files_mib"] >= 0.0 and rows["point-cache"]["shape_keys"] == 53
    # The noise the synthetic performance adds shows as ARKit curves' reconstruction error.
    assert 0 < rows["arkit"]["reconstruction_error_mm"][0] < 1
