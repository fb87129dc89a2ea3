"""Opening a lab capture someone sent: its files are read without unpickling (issue 11)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from backend.events import EventSink
from backend.formats.errors import BadInput
from backend.lab.capture import CaptureConfig, LabCapture, make_capture

TINY = CaptureConfig(expressions=2, cameras=2, image_size=32, texture_size=16, seed=1)


class _WritesAMarker:
    """Unpickling this runs `open(marker, 'w')`: proof that a loader executed file content."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path) -> None:
    """Replace the capture's .npz or .npy at `path` with an object array holding the payload."""
    payload = np.array([_WritesAMarker(marker), 1.0], dtype=object)
    if path.suffix == ".npy":
        np.save(path, payload, allow_pickle=True)
        return
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    first = next(iter(arrays))
    np.savez(path, **{**arrays, first: payload})


@pytest.mark.parametrize("name", ["samples.npz", "average_texture.npy", "average_coverage.npy",
                                  "head.npz"])
def test_a_crafted_capture_file_never_runs_code(default_head, tmp_path: Path, name: str):
    capture = make_capture(default_head, TINY, tmp_path / "capture", False, EventSink(False))
    LabCapture.open(capture)
    marker = tmp_path / "executed"
    _plant(capture / name, marker)
    with pytest.raises(BadInput, match=rf"{capture}/{name.replace('.', '[.]')} cannot be read"):
        LabCapture.open(capture)
    assert not marker.exists()
    # The payload is live: a loader that unpickles would have run it.
    live = shutil.copy(capture / name, tmp_path / ("live" + Path(name).suffix))
    loaded = np.load(live, allow_pickle=True)
    handle = (loaded[next(iter(loaded.files))] if name.endswith(".npz") else loaded)[0]
    handle.close()
    assert marker.exists()
