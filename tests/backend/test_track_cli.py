"""End to end: `python -m backend track` as a subprocess on real footage, and its failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from backend.formats import protocol
from conftest import REPO_ROOT, run_backend


def _events(stdout: str) -> list[dict]:
    return [e for e in map(protocol.parse_event_line, stdout.splitlines()) if e]


def _assert_failed(done: subprocess.CompletedProcess, kind: str, out) -> dict:
    events = _events(done.stdout)
    errors = [e for e in events if e["event"] == "error"]
    assert done.returncode == protocol.EXIT_CODES[kind], done.stdout + done.stderr
    assert errors and errors[-1]["kind"] == kind, events
    assert not any(e["event"] == "result" for e in events)
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "temp output left behind"
    return errors[-1]


@pytest.mark.data
def test_track_writes_the_results_contract(data_dir, tmp_path):
    out = tmp_path / "r"
    done = run_backend("track", str(data_dir / "videos/lp_driving_d0.mp4"), "--out", str(out),
                       "--frames", "10-39", "--device", "cpu", "--events")
    assert done.returncode == 0, done.stderr
    events = _events(done.stdout)
    assert events[-1] == {"event": "result", "path": str(out)}
    stages = {e["stage"] for e in events if e["event"] == "progress"}
    # The default tracker's stages (no refinement by default: --adapt-refine-passes 0).
    assert {"detect", "crop", "encode", "adapt", "encode adapted"} <= stages and "refine" not in stages, stages
    document = json.loads((out / "result.json").read_text())
    assert document["tracker"] == "adapted" and document["metrics"]["adaptation_steps"] > 0
    assert document["schema"] == protocol.SCHEMA_VERSION
    assert document["source"]["frame_range"] == [10, 39]
    assert document["metrics"]["landmark_reprojection_px"] < 8
    with np.load(out / "tracking.npz") as t, np.load(out / "mesh.npz") as m:
        assert t["frames"].tolist() == list(range(10, 40))
        f, v = t["vertices"].shape[:2]
        assert (f, t["head_pose"].shape, t["landmarks_2d"].shape) == (30, (30, 4, 4), (30, 68, 2))
        assert t["intrinsics"].shape == (3, 3) and t["confidence"].min() > 0
        assert all(np.isfinite(t[k]).all() for k in t.files if t[k].dtype.kind == "f")
        assert m["faces"].max() < v and str(m["topology_hash"]) == document["topology_hash"]
        textures = sorted((out / "textures" / "projected").glob("*.png"))
        assert [p.stem for p in textures] == [f"{i:06d}" for i in range(10, 40)]
        import cv2

        rgba = cv2.imread(str(textures[0]), cv2.IMREAD_UNCHANGED)
        assert rgba.shape == (512, 512, 4) and 2000 < (rgba[..., 3] > 0).sum() < 100_000
        # The fitted landmarks overlay the detected ones.
        err = np.linalg.norm(t["landmarks_fit"] - t["landmarks_2d"], axis=-1)[:, m["landmark_mask"]]
        assert err.mean() < 8


@pytest.mark.data
def test_track_a_whole_clip(data_dir, tmp_path):
    out = tmp_path / "d3"
    done = run_backend("track", str(data_dir / "videos/lp_driving_d3.mp4"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads((out / "result.json").read_text())
    assert document["metrics"]["frames_total"] == 354
    assert document["metrics"]["frames_tracked"] == 354
    assert 0 < document["metrics"]["landmark_reprojection_px"] < 10
    assert (out / "textures" / "footage" / "000353.png").is_file()  # the decoded texture of every frame


def test_missing_footage(tmp_path):
    out = tmp_path / "r"
    error = _assert_failed(run_backend("track", str(tmp_path / "nope.mp4"), "--out", str(out),
                                       "--events"), "bad_input", out)
    assert "nope.mp4" in error["message"]


def test_file_that_is_not_a_video(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a movie")
    out = tmp_path / "r"
    error = _assert_failed(run_backend("track", str(fake), "--out", str(out), "--events"),
                           "bad_input", out)
    assert "notes.mp4" in error["message"] and "decoded" in error["message"]


def test_clip_without_a_face(tmp_path):
    import cv2

    clip = tmp_path / "noface"
    clip.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(clip / f"{i:04d}.png"), rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    out = tmp_path / "r"
    error = _assert_failed(run_backend("track", str(clip), "--out", str(out), "--events"),
                           "no_face", out)
    assert "no face" in error["message"]


@pytest.mark.data
def test_frame_range_outside_the_clip(data_dir, tmp_path):
    out = tmp_path / "r"
    error = _assert_failed(run_backend("track", str(data_dir / "videos/lp_driving_d0.mp4"),
                                       "--out", str(out), "--frames", "70-90", "--events"),
                           "bad_input", out)
    assert "78 frames" in error["message"]


@pytest.mark.data
def test_existing_out_is_refused_and_kept(data_dir, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    done = run_backend("track", str(data_dir / "videos/lp_driving_d0.mp4"), "--out", str(out),
                       "--events")
    assert done.returncode == protocol.EXIT_CODES["bad_input"]
    assert "--overwrite" in _events(done.stdout)[-1]["message"]
    assert (out / "precious.txt").read_text() == "keep me"


@pytest.mark.data
def test_corrupt_head_file(data_dir, tmp_path):
    head = tmp_path / "head.npz"
    head.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "r"
    error = _assert_failed(run_backend("track", str(data_dir / "videos/lp_driving_d0.mp4"),
                                       "--out", str(out), "--head", str(head), "--events"),
                           "bad_input", out)
    assert "head.npz" in error["message"]


@pytest.mark.data
def test_killed_mid_run_leaves_nothing(data_dir, tmp_path):
    out = tmp_path / "r"
    process = subprocess.Popen(
        [sys.executable, "-m", "backend", "track", str(data_dir / "videos/lp_driving_d3.mp4"),
         "--out", str(out), "--events"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        event = protocol.parse_event_line(line)
        if event and event["event"] == "progress" and event["done"] >= 20:
            break
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read()
    code = process.wait(timeout=60)
    time.sleep(0.1)
    assert code == protocol.EXIT_CODES["cancelled"]
    assert _events(rest)[-1]["kind"] == "cancelled"
    assert not out.exists() and not list(tmp_path.glob(".r*"))


@pytest.mark.data
def test_frames_without_a_face_are_held_and_unobserved(data_dir, tmp_path):
    import cv2

    clip = tmp_path / "clip"
    clip.mkdir()
    capture = cv2.VideoCapture(str(data_dir / "videos/lp_driving_d0.mp4"))
    for i in range(6):
        ok, frame = capture.read()
        assert ok
        if i in (2, 3):
            frame[:] = 0  # the face leaves the frame
        cv2.imwrite(str(clip / f"{i:04d}.png"), frame)
    capture.release()
    out = tmp_path / "r"
    done = run_backend("track", str(clip), "--out", str(out), "--texture-size", "64", "--events")
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(e["event"] == "warning" and "2-3" in e["message"] for e in _events(done.stdout))
    document = json.loads((out / "result.json").read_text())
    assert document["warnings"]["untracked_frames"] == [2, 3]
    with np.load(out / "tracking.npz") as t:
        assert t["confidence"][[2, 3]].tolist() == [0, 0] and (t["confidence"][[0, 1, 4, 5]] > 0).all()
        np.testing.assert_array_equal(t["vertices"][2], t["vertices"][1])  # held from the nearest
    for frame, seen in ((1, True), (2, False), (3, False), (4, True)):
        alpha = cv2.imread(str(out / "textures" / "projected" / f"{frame:06d}.png"),
                           cv2.IMREAD_UNCHANGED)[..., 3]
        assert (alpha > 0).any() == seen


def test_image_sequence_of_mixed_sizes_is_refused(tmp_path):
    import cv2

    clip = tmp_path / "mixed"
    clip.mkdir()
    for i, size in enumerate((64, 64, 48)):
        cv2.imwrite(str(clip / f"{i:04d}.png"), np.zeros((size, size, 3), np.uint8))
    out = tmp_path / "r"
    error = _assert_failed(run_backend("track", str(clip), "--out", str(out), "--events"),
                           "bad_input", out)
    assert "0002.png" in error["message"] and "one size" in error["message"]


@pytest.mark.parametrize("argument", [["--texture-size", "-5"], ["--texture-size", "100000"],
                                      ["--fps", "0"], ["--frames", "5:10"], ["--device", "gpu"]])
def test_bad_options_are_refused_before_any_work(tmp_path, argument):
    out = tmp_path / "r"
    clip = tmp_path / "clip"
    clip.mkdir()
    done = run_backend("track", str(clip), "--out", str(out), "--events", *argument)
    assert done.returncode == protocol.EXIT_CODES["bad_input"]
    assert _events(done.stdout)[-1]["kind"] == "bad_input"
    assert not out.exists()


@pytest.mark.data
def test_mediapipe_blendshape_baseline(data_dir, tmp_path):
    """The baseline a user would pick instead, through the same results contract."""
    out = tmp_path / "mp"
    done = run_backend("track", str(data_dir / "videos/lp_driving_d0.mp4"), "--out", str(out),
                       "--frames", "0-19", "--tracker", "mediapipe-blendshapes", "--texture-size", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads((out / "result.json").read_text())
    assert document["tracker"] == "mediapipe-blendshapes"
    assert document["metrics"]["frames_tracked"] == 20
    assert document["metrics"]["landmark_reprojection_px"] < 15
    with np.load(out / "tracking.npz") as t:
        assert t["weights"].shape == (20, 52) and 0 <= t["weights"].min() <= t["weights"].max() <= 1
        rotation = t["head_pose"][:, :3, :3]
        np.testing.assert_allclose(np.linalg.det(rotation), 1, atol=1e-4)


# --- issue 11: what --out may replace, claiming it up front, signals, finite numbers ---------

def _face_frames(data_dir, folder, count: int = 3):
    """A `count`-frame image sequence of one real clip frame (a face), cheap to track."""
    import cv2

    capture = cv2.VideoCapture(str(data_dir / "videos/lp_driving_d0.mp4"))
    ok, image = capture.read()
    capture.release()
    assert ok
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.resize(image, (256, 256)))
    return folder


def _snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _track_process(footage, out, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "backend", "track", str(footage), "--out",
                             str(out), "--events", "--device", "cpu", *extra], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True, env=env)


def _until_progress(process: subprocess.Popen) -> None:
    """Read events until the run reports progress (it holds --out and is decoding)."""
    assert process.stdout is not None
    for line in process.stdout:
        event = protocol.parse_event_line(line)
        if event and event["event"] == "progress":
            return
    raise AssertionError("the run ended without progress")


@pytest.mark.data
def test_overwrite_never_deletes_the_folder_holding_the_footage(data_dir, tmp_path):
    """The report: `track shots/clip.mp4 --out shots --overwrite` deleted shots/, the clip and a
    user's files with it, and exited 0."""
    shots = tmp_path / "shots"
    shots.mkdir()
    (shots / "clip.mp4").write_bytes((data_dir / "videos/lp_driving_d0.mp4").read_bytes())
    (shots / "notes.txt").write_text("the director's notes")
    before = _snapshot(shots)
    start = time.monotonic()
    done = run_backend("track", str(shots / "clip.mp4"), "--out", str(shots), "--overwrite",
                       "--events")
    assert done.returncode == protocol.EXIT_CODES["bad_input"], done.stdout + done.stderr
    error = _events(done.stdout)[-1]
    assert error["kind"] == "bad_input" and str(shots) in error["message"]
    assert "input" in error["message"]
    assert _snapshot(shots) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shots"]
    assert time.monotonic() - start < 60  # refused before decoding 78 frames


def test_overwrite_never_deletes_a_folder_of_other_files(tmp_path):
    clip = tmp_path / "clip"
    clip.mkdir()
    out = tmp_path / "renders"
    out.mkdir()
    (out / "result.json").write_text('{"schema": 1}')  # even beside a FaceAdapt-looking file
    (out / "final_comp.exr").write_bytes(b"a week of compositing")
    before = _snapshot(out)
    done = run_backend("track", str(clip), "--out", str(out), "--overwrite", "--events")
    assert done.returncode == protocol.EXIT_CODES["bad_input"]
    message = _events(done.stdout)[-1]["message"]
    assert str(out) in message and "final_comp.exr" in message
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip", "renders"]


@pytest.mark.data
def test_overwrite_replaces_a_results_directory(data_dir, tmp_path):
    frames = _face_frames(data_dir, tmp_path / "frames")
    out = tmp_path / "r"
    for _ in range(2):
        done = run_backend("track", str(frames), "--out", str(out), "--overwrite",
                           "--texture-size", "0", "--device", "cpu", "--events")
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads((out / "result.json").read_text())["source"]["frame_count"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "r"]


@pytest.mark.parametrize("parent", ["a file", "read-only"])
def test_out_that_cannot_be_written_is_refused_before_decoding(tmp_path, parent):
    """The report: --out under a read-only parent failed with exit 4 after all the tracking."""
    import os

    clip = tmp_path / "clip"
    clip.mkdir()  # an empty image folder: refused too, but only once decoding starts
    if parent == "a file":
        blocker = tmp_path / "notes.txt"
        blocker.write_text("not a folder")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes in a read-only folder: no permission to be refused")
        blocker = tmp_path / "locked"
        blocker.mkdir()
        blocker.chmod(0o555)
    out = blocker / "r"
    try:
        done = run_backend("track", str(clip), "--out", str(out), "--events")
    finally:
        blocker.chmod(0o755)
    assert done.returncode == protocol.EXIT_CODES["bad_input"], done.stdout + done.stderr
    message = _events(done.stdout)[-1]["message"]
    assert str(out) in message and "no images" not in message.lower()
    assert not out.exists()


@pytest.mark.data
def test_a_second_run_on_the_same_out_is_refused_up_front(data_dir, tmp_path):
    """The report: a second run on the same --out failed with exit 4 after its full work."""
    out = tmp_path / "r"
    # A cold stage cache of its own and the longest clip (354 frames, about two minutes with
    # the default tracker): with a warm cache or a short clip the first run could finish before
    # the second had been refused (it did in CI, twice), leaving nothing to cancel.
    cold = dict(os.environ, FACEADAPT_CACHE=str(tmp_path / "cold-cache"))
    first = _track_process(data_dir / "videos/lp_driving_d3.mp4", out, "--texture-size", "0",
                           env=cold)
    try:
        _until_progress(first)
        start = time.monotonic()
        second = run_backend("track", str(data_dir / "videos/lp_driving_d0.mp4"), "--out",
                             str(out), "--events", "--device", "cpu")
        assert second.returncode == protocol.EXIT_CODES["bad_input"], second.stdout
        message = _events(second.stdout)[-1]["message"]
        assert str(out) in message and f"pid {first.pid}" in message
        assert time.monotonic() - start < 60
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == protocol.EXIT_CODES["cancelled"]
    assert not out.exists() and not list(tmp_path.glob(".r*"))


@pytest.mark.data
@pytest.mark.parametrize("delay_s", [0.3, 0.8])
def test_sigterm_in_the_first_second_exits_cancelled_with_an_event(data_dir, tmp_path, delay_s):
    """The report: SIGTERM in the first second (modules still importing) exited 143, no event."""
    process = _track_process(data_dir / "videos/lp_driving_d3.mp4", tmp_path / "r")
    time.sleep(delay_s)
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == protocol.EXIT_CODES["cancelled"], stdout
    assert _events(stdout)[-1]["kind"] == "cancelled"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.data
@pytest.mark.parametrize("signals", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGHUP,)],
                         ids=["sigterm-twice", "sighup"])
def test_a_second_sigterm_or_a_sighup_cancels_and_cleans_up(data_dir, tmp_path, signals):
    """The report: a second SIGTERM (Esc twice) exited -15; SIGHUP was not trapped and left a
    hidden .partial folder."""
    out = tmp_path / "r"
    process = _track_process(data_dir / "videos/lp_driving_d3.mp4", out)
    _until_progress(process)
    for signum in signals:
        process.send_signal(signum)
        time.sleep(0.05)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == protocol.EXIT_CODES["cancelled"], stdout
    assert _events(stdout)[-1]["kind"] == "cancelled"
    assert not out.exists() and not list(tmp_path.glob(".r*"))


@pytest.mark.data
def test_a_partial_folder_of_a_killed_run_is_swept_by_the_next(data_dir, tmp_path):
    """The report: SIGKILL (or an untrapped signal) left a hidden .partial folder for good."""
    out = tmp_path / "r"
    killed = _track_process(data_dir / "videos/lp_driving_d3.mp4", out)
    _until_progress(killed)
    killed.kill()
    killed.communicate(timeout=60)
    left = sorted(p.name for p in tmp_path.glob(".r*"))
    assert any(name.endswith(".partial") and f"pid{killed.pid}." in name for name in left), left
    noise = tmp_path / "noise"
    noise.mkdir()
    import cv2

    for i in range(2):
        cv2.imwrite(str(noise / f"{i:04d}.png"), np.full((64, 64, 3), 128, np.uint8))
    done = run_backend("track", str(noise), "--out", str(out), "--events")  # fails: no face
    assert done.returncode == protocol.EXIT_CODES["no_face"], done.stdout + done.stderr
    assert not out.exists() and not list(tmp_path.glob(".r*"))


@pytest.mark.parametrize("fps", ["inf", "-inf", "nan", "Infinity"])
def test_fps_that_is_not_a_finite_number_is_refused(tmp_path, fps):
    """The report: `--fps inf` was accepted and wrote Infinity into result.json."""
    clip = tmp_path / "clip"
    clip.mkdir()
    out = tmp_path / "r"
    error = _assert_failed(run_backend("track", str(clip), "--out", str(out), "--fps", fps,
                                       "--events"), "bad_input", out)
    assert "--fps" in error["message"]
