"""`track --tracker encoder` on bad input (issue 12): frames without a face, a face leaving the
frame (both also for `--tracker adapted`, issue 13), footage far smaller or larger than the
crop, a model without an encoder, CUDA refused without CUDA (and matching the CPU where there
is CUDA), the detections stage cache, and what an encoder run writes.

Run with the seeded untrained encoder (conftest.untrained_encoder_model): these tests check
plumbing and refusals, never accuracy. Most run `run_track` in this process (a few frames);
only the refusals whose exit code matters run the backend as a subprocess.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from backend.formats import protocol
from conftest import run_backend

CLIP = "videos/lp_driving_d0.mp4"  # 512x512, the face at x 140-370, y 210-435 on frame 0


@pytest.fixture(scope="module")
def clip_frames(data_dir) -> list[np.ndarray]:
    """The first 6 frames of CLIP, (512, 512, 3) uint8 BGR (as cv2 writes them)."""
    import cv2

    capture = cv2.VideoCapture(str(data_dir / CLIP))
    frames = []
    for _ in range(6):
        ok, frame = capture.read()
        assert ok
        frames.append(frame)
    capture.release()
    return frames


def _image_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    """An image-sequence footage folder: frames as 0000.png, 0001.png, ..."""
    import cv2

    folder.mkdir()
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    return folder


def _track(footage: Path, out: Path, model: Path, **settings) -> tuple[Path, list[dict]]:
    """run_track with the encoder tracker, on CPU and with no textures unless asked; (results, events)."""
    from backend.events import EventSink
    from backend.track import TrackSettings, run_track

    stream = io.StringIO()
    options = {"texture_size": 0, "tracker": "encoder", "device": "cpu", **settings}
    run_track(TrackSettings(footage=footage, out=out, model=str(model), **options),
              EventSink(json_lines=True, out=stream))
    events = [e for e in map(protocol.parse_event_line, stream.getvalue().splitlines()) if e]
    return out, events


def _logs(events: list[dict]) -> list[str]:
    return [e["message"] for e in events if e["event"] == "log"]


def _tracking(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "tracking.npz") as t:
        return {k: t[k] for k in t.files}


def _model_without_encoder(tmp_path: Path, model: Path) -> Path:
    folder = tmp_path / "no-encoder"
    shutil.copytree(model, folder, ignore=shutil.ignore_patterns("encoder.*"))
    return folder


def _tracker(name: str) -> dict:
    """The settings of tracker `name` for these tests (a short adaptation: plumbing, not accuracy)."""
    from backend.adaptation.config import AdaptationConfig

    if name == "adapted":
        return {"tracker": name, "adaptation": AdaptationConfig(passes=2, texels=32, shading_window=5)}
    return {"tracker": name}


@pytest.mark.data
@pytest.mark.parametrize("tracker", ["encoder", "adapted"])
def test_a_frame_without_a_face_is_untracked_and_held(clip_frames, untrained_encoder_model, tmp_path, tracker):
    frames = [f.copy() for f in clip_frames[:5]]
    frames[2][:] = 0
    out, events = _track(_image_folder(tmp_path / "clip", frames), tmp_path / "r",
                         untrained_encoder_model, **_tracker(tracker))
    document = json.loads((out / "result.json").read_text())
    assert document["warnings"]["untracked_frames"] == [2] and document["tracker"] == tracker
    assert any(e["event"] == "warning" and "without a face" in e["message"] for e in events)
    assert document["metrics"]["frames_tracked"] == 4
    t = _tracking(out)
    assert t["confidence"][2] == 0 and (t["confidence"][[0, 1, 3, 4]] > 0).all()
    # Held from a neighbour, never invented.
    for name in ("vertices", "head_pose", "latent", "landmarks_fit", "weights"):
        assert any(np.array_equal(t[name][2], t[name][n]) for n in (1, 3)), name
    assert all(np.isfinite(t[k]).all() for k in t if t[k].dtype.kind == "f")
    assert not (out / "textures").exists()  # --texture-size 0: no textures of either kind


@pytest.mark.data
@pytest.mark.parametrize("tracker", ["encoder", "adapted"])
def test_a_face_leaving_the_frame_still_tracks(clip_frames, untrained_encoder_model, tmp_path, tracker):
    from backend.encoder.crop import box_from_landmarks

    # The face slides right, frame by frame (MediaPipe's video mode follows it), until a third
    # of it is outside the image: its crop reaches past the border and is filled with black.
    frames = []
    for frame, dx in zip(clip_frames, (0, 70, 140, 200), strict=False):
        moved = np.zeros_like(frame)
        moved[:, dx:] = frame[:, :frame.shape[1] - dx]
        frames.append(moved)
    out, _ = _track(_image_folder(tmp_path / "clip", frames), tmp_path / "r", untrained_encoder_model,
                    **_tracker(tracker))
    document = json.loads((out / "result.json").read_text())
    assert document["warnings"]["untracked_frames"] == [] and document["tracker"] == tracker
    t = _tracking(out)
    assert t["landmarks_2d"][3, :, 0].max() > 512  # the detected face crosses the border
    box = box_from_landmarks(t["landmarks_2d"][3], t["landmarks_conf"][3])
    assert box is not None and box.cx + box.side / 2 > 512 + box.side / 4
    assert (t["confidence"] > 0).all()
    assert all(np.isfinite(t[k]).all() for k in t if t[k].dtype.kind == "f")


@pytest.mark.data
@pytest.mark.parametrize("size", [96, 2400])
def test_footage_far_smaller_or_larger_than_the_crop(clip_frames, untrained_encoder_model,
                                                     tmp_path, size):
    import cv2

    from backend.encoder.encoder_file import read_encoder_info

    crop = read_encoder_info(untrained_encoder_model)["architecture"]["crop_size"]
    assert size < crop or size > 8 * crop
    interpolation = cv2.INTER_AREA if size < 512 else cv2.INTER_LINEAR
    frames = [cv2.resize(f, (size, size), interpolation=interpolation) for f in clip_frames[:2]]
    out, _ = _track(_image_folder(tmp_path / "clip", frames), tmp_path / "r", untrained_encoder_model)
    document = json.loads((out / "result.json").read_text())
    assert document["metrics"]["frames_tracked"] == 2
    assert (document["source"]["width"], document["source"]["height"]) == (size, size)
    t = _tracking(out)
    # Intrinsics in the footage's own pixels: focal = the longer side (focal_factor 1), centred.
    np.testing.assert_allclose(t["intrinsics"], [[size, 0, (size - 1) / 2], [0, size, (size - 1) / 2],
                                                 [0, 0, 1]], rtol=1e-6)
    assert np.array_equal(np.asarray(document["intrinsics"], np.float32), t["intrinsics"])
    assert all(np.isfinite(t[k]).all() for k in t if t[k].dtype.kind == "f")
    # Untrained: no accuracy, but the fitted face lies on the image, where the crop was.
    centre = t["landmarks_fit"].mean(1)
    assert ((centre > 0) & (centre < size)).all(), centre


def test_a_model_without_an_encoder_is_refused_before_detecting(untrained_encoder_model, tmp_path):
    import cv2

    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(2):
        cv2.imwrite(str(clip / f"{i:04d}.png"), np.full((64, 64, 3), 90, np.uint8))
    model = _model_without_encoder(tmp_path, untrained_encoder_model)
    out = tmp_path / "r"
    start = time.perf_counter()
    done = run_backend("track", str(clip), "--out", str(out), "--tracker", "encoder", "--model",
                       str(model), "--device", "cpu", "--events", timeout=300)
    seconds = time.perf_counter() - start
    events = [e for e in map(protocol.parse_event_line, done.stdout.splitlines()) if e]
    assert done.returncode == protocol.EXIT_CODES["bad_input"], done.stdout + done.stderr[-2000:]
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "bad_input"
    assert "train-encoder" in events[-1]["message"] and str(model) in events[-1]["message"]
    assert not any(e["event"] == "progress" for e in events), events  # no detection, no decoding
    assert not out.exists() and not list(tmp_path.glob(".r*"))
    assert seconds < 120  # an import of torch, not a run (generous: the CPU is shared)


def test_device_cuda_without_cuda_is_refused(untrained_encoder_model, tmp_path, capsys):
    import torch

    from backend.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    clip = tmp_path / "clip"
    clip.mkdir()
    out = tmp_path / "r"
    code = main(["track", str(clip), "--out", str(out), "--tracker", "encoder", "--model",
                 str(untrained_encoder_model), "--device", "cuda", "--events"])
    events = [e for e in map(protocol.parse_event_line, capsys.readouterr().out.splitlines()) if e]
    assert code == protocol.EXIT_CODES["bad_input"]
    assert events[-1]["kind"] == "bad_input" and "--device cuda" in events[-1]["message"]
    assert "no CUDA" in events[-1]["message"] and "--device cpu" in events[-1]["message"]
    assert not out.exists()


@pytest.mark.data
def test_cuda_results_match_cpu(clip_frames, untrained_encoder_model, tmp_path):
    """Where CUDA is visible (skipped here): the same frames tracked on CUDA and on the CPU give
    the same vertices, poses and codes, and textures baked for the footage camera on each
    agree. What ran on a lent GPU (docs/tracker.md, "On CUDA"); projected textures, which go
    through Warp's CUDA kernels, are not compared: they have not run on a GPU yet."""
    import cv2
    import torch

    from backend.events import EventSink
    from backend.formats.camera_file import CameraFile
    from backend.formats.results_dir import read_results
    from backend.texture_baking import BakeTexturesConfig, bake_textures

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: this test runs on GPU machines")
    footage = _image_folder(tmp_path / "clip", clip_frames)
    runs = {device: _track(footage, tmp_path / device, untrained_encoder_model, device=device)[0]
            for device in ("cpu", "cuda")}
    a, b = _tracking(runs["cpu"]), _tracking(runs["cuda"])
    np.testing.assert_array_equal(a["frames"], b["frames"])
    np.testing.assert_allclose(b["vertices"], a["vertices"], atol=1e-5)  # metres: 0.01 mm
    np.testing.assert_allclose(b["head_pose"], a["head_pose"], atol=1e-4)
    np.testing.assert_allclose(b["latent"], a["latent"], atol=1e-3)
    tracked = read_results(runs["cpu"])
    camera = CameraFile(512, 512, tracked.intrinsics,
                        {int(f): p for f, p in zip(tracked.frames, tracked.head_pose, strict=True)}
                        ).save(tmp_path / "footage_cam.json")
    baked = {device: bake_textures(BakeTexturesConfig(results=out, camera=camera, device=device),
                                   EventSink(False)) for device, out in runs.items()}
    names = sorted(p.name for p in baked["cpu"].iterdir())
    assert len(names) == len(clip_frames) and names == sorted(p.name for p in baked["cuda"].iterdir())
    for name in names:
        on_cpu, on_cuda = (cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED).astype(int)
                           for folder in baked.values())
        assert np.abs(on_cpu - on_cuda).max() <= 2, name  # the same arithmetic in another order


@pytest.mark.data
def test_detections_stage_cache_reuse_range_and_corrupt_entry(clip_frames, untrained_encoder_model,
                                                              tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FACEADAPT_CACHE", str(cache))
    clip = _image_folder(tmp_path / "clip", clip_frames[:3])
    cached = "landmarks from the stage cache"

    first, events = _track(clip, tmp_path / "r1", untrained_encoder_model)
    assert not any(cached in m for m in _logs(events))
    assert any(e["event"] == "progress" and e["stage"] == "detect" for e in events)
    entries = sorted((cache / "stages" / "detections").glob("*.npz"))
    assert len(entries) == 1

    again, events = _track(clip, tmp_path / "r2", untrained_encoder_model)
    assert any(cached in m for m in _logs(events))
    assert not any(e["event"] == "progress" and e["stage"] == "detect" for e in events)
    t1, t2 = _tracking(first), _tracking(again)
    for name in ("landmarks_2d", "landmarks_conf", "vertices", "head_pose"):
        np.testing.assert_array_equal(t1[name], t2[name], err_msg=name)

    _, events = _track(clip, tmp_path / "r3", untrained_encoder_model, frames="0-1")
    assert not any(cached in m for m in _logs(events))
    assert len(list((cache / "stages" / "detections").glob("*.npz"))) == 2

    entries[0].write_bytes(b"not an npz at all")
    fresh, events = _track(clip, tmp_path / "r4", untrained_encoder_model)
    logs = _logs(events)
    assert not any(cached in m for m in logs) and any("ignoring a stage cache entry" in m for m in logs)
    np.testing.assert_array_equal(_tracking(fresh)["landmarks_2d"], t1["landmarks_2d"])
    with np.load(entries[0]) as entry:  # detected again and stored again
        np.testing.assert_array_equal(entry["points"], t1["landmarks_2d"])


@pytest.mark.data
def test_an_encoder_run_writes_the_model_record_latent_and_decoded_textures(
        clip_frames, untrained_encoder_model, tmp_path):
    from backend.dam.model_folder import model_id

    clip = _image_folder(tmp_path / "clip", clip_frames[:5])
    out, _ = _track(clip, tmp_path / "r", untrained_encoder_model, frames="2-4", texture_size=16)
    document = json.loads((out / "result.json").read_text())
    assert document["tracker"] == "encoder"
    assert document["dam_model"] == {"spec": str(untrained_encoder_model),
                                     "path": str(untrained_encoder_model),
                                     "weights": model_id(untrained_encoder_model)}
    metrics = document["metrics"]
    assert 0 <= metrics["arkit_solve_vertex_mm"] <= metrics["arkit_solve_vertex_mm_p95"] < 50
    assert "decoded_textures" in document["timings_s"]
    names = [f"{i:06d}.png" for i in (2, 3, 4)]
    assert sorted(p.name for p in (out / "textures" / "footage").iterdir()) == names
    assert sorted(p.name for p in (out / "textures" / "projected").iterdir()) == names
    t = _tracking(out)
    assert t["latent"].shape == (3, 64) and t["latent"].dtype == np.float32
    assert t["frames"].tolist() == [2, 3, 4]
    assert t["weights"].shape[0] == 3 and len(t["weight_names"]) == t["weights"].shape[1]

