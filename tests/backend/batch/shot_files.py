"""What the batch tests share: shot files of short ranges of the real clips (the landmark fit, no
textures: seconds a shot), a shot made to fail while it runs, and the comparison of a shot's
results directory with what `track` writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FRAMES = "0-5"
CLIPS = ("lp_driving_d0", "lp_driving_d3", "lp_driving_d9")


def damaged_sequence(data_dir: Path, tmp_path: Path) -> Path:
    """Six frames of a real clip as an image sequence whose fourth image is damaged: the shot
    passes the checks before the batch (its first image reads) and fails while tracking."""
    import cv2

    folder = tmp_path / "damaged"
    folder.mkdir()
    capture = cv2.VideoCapture(str(data_dir / "videos" / "lp_driving_d10.mp4"))
    for index in range(6):
        ok, frame = capture.read()
        assert ok
        cv2.imwrite(str(folder / f"frame_{index:04d}.png"), frame)
    capture.release()
    (folder / "frame_0003.png").write_bytes(b"\x89PNG damaged in transfer")
    return folder


def shot_file(folder: Path, data_dir: Path, clips: tuple[str, ...] = CLIPS,
              extra: str = "", frames: str = FRAMES) -> Path:
    """A shot file of `clips` (`frames`, the landmark fit, no textures) and `extra` shots."""
    shots = "".join(f'\n[[shot]]\nname = "{clip}"\nfootage = "{data_dir / "videos" / clip}.mp4"\n'
                    for clip in clips)
    path = folder / "shots.toml"
    path.write_text(f'[defaults]\ntracker = "landmark-fit"\ntexture_size = 0\nframes = "{frames}"\n'
                    f'device = "cpu"\n{shots}{extra}')
    return path


def assert_same_results(results: Path, reference: Path, atol: float = 1e-5) -> None:
    """The results directory `results` holds what `reference` (track's) holds: the same files,
    arrays within `atol`, result.json equal but for its timings."""
    assert sorted(p.name for p in results.iterdir()) == sorted(p.name for p in reference.iterdir())
    for name in ("tracking.npz", "mesh.npz"):
        ours, theirs = np.load(results / name), np.load(reference / name)
        assert sorted(ours.files) == sorted(theirs.files)
        for key in ours.files:
            if ours[key].dtype.kind == "f":
                np.testing.assert_allclose(ours[key], theirs[key], rtol=0, atol=atol, err_msg=f"{name}:{key}")
            else:
                np.testing.assert_array_equal(ours[key], theirs[key], err_msg=f"{name}:{key}")
    ours, theirs = (json.loads((d / "result.json").read_text()) for d in (results, reference))
    ours.pop("timings_s"), theirs.pop("timings_s")
    assert ours == theirs
