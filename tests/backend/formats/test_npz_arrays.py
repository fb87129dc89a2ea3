"""The one npz reader behind head, results and clip files: it never unpickles (issue 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_results_dir import write_results

from backend.formats.clip_files import load_performance, load_truth
from backend.formats.errors import BadInput
from backend.formats.results_dir import MESH_NPZ, TRACKING_NPZ, read_results
from conftest import rewrite_npz


class _WritesAMarker:
    """Unpickling this runs `open(marker, 'w')`: proof that a loader executed file content."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _payload(marker: Path) -> np.ndarray:
    """An object array (np.savez pickles it) whose unpickling runs the marker's open."""
    return np.array([_WritesAMarker(marker), 1.0], dtype=object)


def _proves_live(path: Path, marker: Path) -> None:
    """A loader that unpickles would have run the payload."""
    with np.load(path, allow_pickle=True) as data:
        data["payload"][0].close()
    assert marker.exists()


@pytest.mark.parametrize("name", [TRACKING_NPZ, MESH_NPZ])
def test_a_crafted_results_file_never_runs_code(tmp_path: Path, name: str):
    results = write_results(tmp_path / "results")
    marker = tmp_path / "executed"
    rewrite_npz(results / name, payload=_payload(marker))
    with pytest.raises(BadInput, match=rf"results file {results}/{name.replace('.', '[.]')} "
                                       "cannot be read"):
        read_results(results)
    assert not marker.exists()
    _proves_live(results / name, marker)


@pytest.mark.parametrize(("reader", "what"), [(load_truth, "ground truth"),
                                              (load_performance, "performance file")])
def test_a_crafted_clip_file_never_runs_code(tmp_path: Path, reader, what: str):
    path, marker = tmp_path / "clip.npz", tmp_path / "executed"
    np.savez(path, payload=_payload(marker))
    with pytest.raises(BadInput, match=rf"{what} {path} cannot be read"):
        reader(path)
    assert not marker.exists()
    _proves_live(path, marker)
