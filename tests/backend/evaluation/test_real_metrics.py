"""Real-footage metrics (issue 6) on constructed cases with known answers, and the dlib reference
detector on the annotated photos."""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.evaluation.real_metrics import (
    consecutive_runs,
    detector_agreement,
    evaluate_real_clip,
    fraction_tracked,
    landmark_jitter,
    photometric_clip_error,
)
from backend.events import EventSink
from backend.footage import Footage
from backend.formats.errors import BadInput
from backend.formats.results_dir import TrackingArrays, write_arrays, write_summary
from backend.landmarks.annotations import read_pts
from backend.landmarks.nme import nme as landmark_nme

RNG = np.random.default_rng(0)
CLIP_SIZE = 128
CLIP_YAWS = (-12.0, -4.0, 4.0, 12.0)


def quiet() -> EventSink:
    return EventSink(True, out=io.StringIO())


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def write_rgb(path: Path, image: np.ndarray) -> None:
    import cv2

    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def dlib_detector():
    from backend.landmarks.dlib_detector import DlibDetector

    return DlibDetector()


# --- the reference detector -----------------------------------------------------------------

@pytest.mark.data
def test_dlib_on_the_annotated_photos(data_dir, dlib_detector):
    """NME against the human annotation (0.013-0.038 measured; these LFPW/300-W photos are
    likely in dlib's own training set, so this checks conventions, not generalisation)."""
    from backend.landmarks.mediapipe_mapping import annotated_photos

    pairs = annotated_photos(data_dir / "landmarks")
    assert len(pairs) == 5
    for image_path, pts_path in pairs:
        truth = read_pts(pts_path)
        detection = dlib_detector.detect(read_rgb(image_path))
        assert detection.found and detection.points.shape == (68, 2), image_path
        assert (detection.confidence == 1).all()
        assert landmark_nme(detection.points[None], truth[None])[0] < 0.08, image_path
        # The annotations scored against themselves give zero.
        assert landmark_nme(truth[None], truth[None])[0] == 0
        same = detector_agreement(truth[None], truth[None], np.array([True]), np.array([True]))
        assert same["nme_mean"] == 0 and same["px_mean"] == 0 and same["frames_used"] == 1


def test_dlib_finds_no_face_in_a_blank_image(dlib_detector):
    detection = dlib_detector.detect(np.full((200, 200, 3), 90, np.uint8))
    assert not detection.found and detection.points.sum() == 0 and detection.confidence.sum() == 0
    with pytest.raises(BadInput, match="uint8"):
        dlib_detector.detect(np.zeros((20, 20, 3), np.float32))


def test_dlib_without_its_model_file_says_what_is_missing(tmp_path, monkeypatch):
    from backend.landmarks.dlib_detector import DlibDetector

    monkeypatch.setenv("FACEADAPT_DLIB_PREDICTOR", str(tmp_path / "absent.dat"))
    with pytest.raises(BadInput, match=r"absent\.dat"):
        DlibDetector()


# --- landmark agreement, jitter, fraction tracked ---------------------------------------------

def test_detector_agreement_counts_skipped_frames_and_never_averages_them():
    reference = RNG.uniform(50, 150, (6, 68, 2)).astype(np.float32)
    tracked = reference + np.array([3.0, 4.0], np.float32)  # 5 px off every point
    found = np.array([True, True, True, False, True, True])
    reference[3] = 0  # a frame without a face holds zeros: averaging it in would give inf/NaN
    ok = np.array([True, False, True, True, True, True])
    result = detector_agreement(tracked, reference, found, ok)
    assert result["frames_used"] == 4
    assert result["frames_skipped_untracked"] == 1
    assert result["frames_skipped_reference_no_face"] == 1
    assert result["px_mean"] == pytest.approx(5.0, rel=1e-5)
    used = found & ok
    expected = 5.0 / np.linalg.norm(reference[used, 36] - reference[used, 45], axis=-1)
    assert result["nme_mean"] == pytest.approx(expected.mean(), rel=1e-5)
    assert result["nme_p95"] == pytest.approx(np.percentile(expected, 95), rel=1e-5)

    mask = np.zeros(68, bool)
    mask[27:48] = True
    assert detector_agreement(tracked, reference, found, ok, mask)["points"] == 21

    nothing = detector_agreement(tracked, reference, np.zeros(6, bool), ok)
    assert nothing["frames_used"] == 0 and nothing["nme_mean"] is None and nothing["px_mean"] is None
    assert nothing["frames_skipped_reference_no_face"] == 5
    with pytest.raises(BadInput, match="68, 2"):
        detector_agreement(tracked[:, :60], reference, found, ok)


def test_jitter_is_not_computed_across_a_gap():
    frames = np.arange(10)
    start = RNG.uniform(50, 150, (1, 68, 2))
    usable = np.ones(10, bool)
    usable[4] = False
    # Constant on each side of the gap, but the two sides differ: spanning the gap would see a jump.
    constant = np.where(frames[:, None, None] < 4, start, start + 7.0)
    # Uniform motion whose offset changes across the gap.
    linear = start + frames[:, None, None] * np.array([1.5, -0.5]) + (frames[:, None, None] > 4) * 9.0
    for track in (constant, linear):
        result = landmark_jitter(track, track, usable, frames)
        assert result["tracked_px"] == pytest.approx(0, abs=1e-9)
        assert result["runs"] == 2 and result["frames"] == 9 and result["second_differences"] == 5
        assert result["ratio"] is None  # the reference does not move either: no scale to compare
    # A jump in the source frame indices breaks a run too; runs shorter than 3 frames are dropped.
    assert [run.tolist() for run in consecutive_runs(np.ones(7, bool), np.array([0, 1, 2, 5, 6, 8, 9]))] \
        == [[0, 1, 2]]


def test_jitter_of_known_shake_and_its_ratio_to_the_reference():
    frames = np.arange(8)
    base = np.tile(RNG.uniform(50, 150, (1, 68, 2)), (8, 1, 1))
    sign = (-1.0) ** frames[:, None, None]
    reference = base + sign * np.array([1.0, 0.0])  # second difference of +-1 alternation: 4 px
    tracked = base + sign * np.array([0.0, 0.5])  # 2 px
    usable = np.ones(8, bool)
    usable[[3]] = False  # runs 0-2 and 4-7: 1 + 2 second differences
    result = landmark_jitter(tracked, reference, usable, frames)
    assert result["reference_px"] == pytest.approx(4.0)
    assert result["tracked_px"] == pytest.approx(2.0)
    assert result["ratio"] == pytest.approx(0.5)
    assert result["second_differences"] == 3
    nothing = landmark_jitter(tracked, reference, np.zeros(8, bool), frames)
    assert nothing["runs"] == 0 and nothing["tracked_px"] is None


def test_fraction_tracked():
    assert fraction_tracked(np.array([1.0, 0.0, 0.4, 0.0])) == 0.5
    with pytest.raises(BadInput):
        fraction_tracked(np.zeros(0))


# --- photometric error on a synthetic clip ----------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_clip(default_head, tmp_path_factory):
    """The default head rendered (flat light: image = albedo) at known poses over a noise
    background into CLIP_SIZE^2 PNGs; returns (folder, tracking arrays with the true poses)."""
    from backend.heads.landmark_embedding import view_camera
    from backend.render.shading import render_textured

    head = default_head
    folder = tmp_path_factory.mktemp("clip")
    albedo = torch.as_tensor(head.albedo).permute(2, 0, 1).float() / 255
    rng = np.random.default_rng(1)
    poses = []
    for i, yaw in enumerate(CLIP_YAWS):
        rotation, translation, k = view_camera(head, yaw)
        translation = translation + np.array([0.01 * i, -0.005 * i, 0.0])  # the head moves too
        scale = CLIP_SIZE / 512
        intrinsics = np.array([[k[0, 0] * scale, 0, (CLIP_SIZE - 1) / 2],
                               [0, k[1, 1] * scale, (CLIP_SIZE - 1) / 2], [0, 0, 1]], np.float32)
        camera = torch.tensor(head.vertices @ rotation.T + translation, dtype=torch.float32)[None]
        image, fragments = render_textured(camera, torch.as_tensor(head.faces), torch.as_tensor(head.uv),
                                           torch.as_tensor(head.uv_faces), albedo,
                                           torch.as_tensor(intrinsics), CLIP_SIZE, CLIP_SIZE, ambient=1.0)
        background = rng.uniform(0, 1, (CLIP_SIZE, CLIP_SIZE, 3))
        frame = np.where(fragments.mask[0, ..., None].numpy(), image[0].numpy(), background)
        write_rgb(folder / f"{i:04d}.png", (frame * 255).round().astype(np.uint8))
        pose = np.eye(4, dtype=np.float32)
        pose[:3, :3], pose[:3, 3] = rotation, translation
        poses.append(pose)
    count = len(CLIP_YAWS)
    tracking = {
        "frames": np.arange(count, dtype=np.int64),
        "vertices": np.repeat(head.vertices[None], count, 0).astype(np.float32),
        "head_pose": np.array(poses),
        "intrinsics": intrinsics,
        "confidence": np.ones(count, np.float32),
    }
    return folder, tracking


def shifted(tracking: dict[str, np.ndarray], pixels: float) -> dict[str, np.ndarray]:
    """The tracking with every head moved sideways by `pixels` in the image."""
    pose = tracking["head_pose"].copy()
    pose[:, 0, 3] += pixels * pose[:, 2, 3] / tracking["intrinsics"][0, 0]
    return {**tracking, "head_pose": pose}


def test_photometric_error_rises_with_tracking_error(synthetic_clip, default_head):
    """True poses: 3.3 of 255 measured (what resampling the texture costs); 4 px off: 16.5."""
    folder, tracking = synthetic_clip
    footage = Footage(folder)
    true = photometric_clip_error(footage, tracking, default_head, quiet(), texture_size=256)
    off = photometric_clip_error(footage, shifted(tracking, 4.0), default_head, quiet(), texture_size=256)
    assert true["frames"] == 4 and true["pixels"] > 10_000 and true["pixels"] <= true["pixels_face"]
    assert true["rms_255"] < 6, true
    assert off["rms_255"] > 2.5 * true["rms_255"], (true, off)


def test_photometric_error_scores_only_tracked_and_stepped_frames_within_the_pixel_budget(
        synthetic_clip, default_head):
    folder, tracking = synthetic_clip
    footage = Footage(folder)
    untracked = {**tracking, "confidence": np.array([1, 0, 1, 1], np.float32)}
    result = photometric_clip_error(footage, untracked, default_head, quiet(), frame_step=2,
                                    texture_size=128, max_pixels=1000)
    assert result["frames"] == 2 and result["frame_step"] == 2  # tracked rows 0, 2, 3 -> 0 and 3
    assert result["pixels"] == 1000 and result["pixels_face"] > 1000
    none = photometric_clip_error(footage, {**tracking, "confidence": np.zeros(4, np.float32)},
                                  default_head, quiet())
    assert none["frames"] == 0 and none["rms_255"] is None
    with pytest.raises(BadInput, match="frame step"):
        photometric_clip_error(footage, tracking, default_head, quiet(), frame_step=0)


def test_photometric_error_over_the_pixels_another_track_covers(synthetic_clip, default_head):
    """Scored against itself, the common pixels are its own face pixels and the error is its
    own; against a track 6 px aside, only the overlap is scored (fewer pixels, same texture); a
    track with no tracked frame leaves nothing to score."""
    from backend.evaluation.face_coverage import FaceCoverage

    folder, tracking = synthetic_clip
    footage = Footage(folder)
    alone = photometric_clip_error(footage, tracking, default_head, quiet(), texture_size=128)
    itself = photometric_clip_error(footage, tracking, default_head, quiet(), texture_size=128,
                                    common_with=[FaceCoverage(tracking, default_head, "itself")])
    assert itself["pixels_common"] == alone["pixels_face"] == itself["pixels_face"]
    assert itself["rms_255"] == pytest.approx(alone["rms_255"]) and itself["common_with"] == ["itself"]
    aside = photometric_clip_error(footage, tracking, default_head, quiet(), texture_size=128,
                                   common_with=[FaceCoverage(shifted(tracking, 6.0), default_head, "aside")])
    assert 0.5 * alone["pixels_face"] < aside["pixels_common"] < 0.97 * alone["pixels_face"], aside
    assert aside["pixels"] < alone["pixels"] and aside["pixels_face"] == alone["pixels_face"]
    untracked = {**tracking, "confidence": np.zeros(4, np.float32)}
    none = photometric_clip_error(footage, tracking, default_head, quiet(), texture_size=128,
                                  common_with=[FaceCoverage(untracked, default_head, "none")])
    assert none["pixels_common"] == 0 and none["rms_255"] is None


# --- evaluate_real_clip ---------------------------------------------------------------------

def write_results(directory: Path, head, tracking: dict[str, np.ndarray], footage: Path,
                  width: int, height: int, landmarks: np.ndarray | None = None) -> Path:
    count = len(tracking["frames"])
    points = np.zeros((count, 68, 2), np.float32) if landmarks is None else landmarks
    directory.mkdir(parents=True)
    write_arrays(directory, TrackingArrays(
        frames=tracking["frames"], vertices=tracking["vertices"], head_pose=tracking["head_pose"],
        intrinsics=tracking["intrinsics"], confidence=tracking["confidence"], landmarks_2d=points,
        landmarks_conf=np.ones((count, 68), np.float32), landmarks_fit=points), head)
    write_summary(directory, {"tracker": "test", "model": "default-v2",
                              "source": {"path": str(footage), "width": width, "height": height}}, head)
    return directory


@pytest.mark.data
def test_evaluate_real_clip_reports_a_frame_without_a_face(data_dir, default_head, dlib_detector, tmp_path):
    """Three frames of an annotated photo and a blank one, "tracked" with the annotation: the
    agreement is exactly dlib's error on the photo over the head's landmarks, the blank frame is
    reported and left out, the still frames have zero jitter."""
    photo = read_rgb(data_dir / "landmarks" / "image_0002.png")
    truth = read_pts(data_dir / "landmarks" / "image_0002.pts")
    height, width = photo.shape[:2]
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        write_rgb(folder / f"{i:04d}.png", photo if i < 3 else np.full_like(photo, 90))
    from backend.heads.landmark_embedding import view_camera

    rotation, translation, k = view_camera(default_head, 0.0)
    pose = np.eye(4, dtype=np.float32)
    pose[:3, :3], pose[:3, 3] = rotation, translation
    tracking = {
        "frames": np.arange(4, dtype=np.int64),
        "vertices": np.repeat(default_head.vertices[None], 4, 0),
        "head_pose": np.repeat(pose[None], 4, 0),
        "intrinsics": np.array([[k[0, 0], 0, (width - 1) / 2], [0, k[0, 0], (height - 1) / 2], [0, 0, 1]],
                               np.float32),
        "confidence": np.ones(4, np.float32),
    }
    results = write_results(tmp_path / "results", default_head, tracking, folder, width, height,
                            np.repeat(truth[None], 4, 0))
    report = evaluate_real_clip(results, None, default_head, "cpu", 1, quiet())

    reference = dlib_detector.detect(photo).points
    expected = landmark_nme(truth[None], reference[None], default_head.landmark_mask)[0]
    assert report["frames"] == 4 and report["frames_tracked"] == 4 and report["fraction_tracked"] == 1
    assert report["frames_reference_found"] == 3 and report["reference_no_face_frames"] == [3]
    assert report["agreement_frames_used"] == 3 and report["agreement_frames_skipped_reference_no_face"] == 1
    assert report["agreement_nme_mean"] == pytest.approx(expected, rel=1e-5)
    assert report["detections_nme_mean"] == pytest.approx(expected, rel=1e-5)
    assert report["agreement_points"] == int(default_head.landmark_mask.sum())
    assert report["jitter_runs"] == 1 and report["jitter_second_differences"] == 1
    assert report["jitter_tracked_px"] == 0 and report["jitter_reference_px"] == 0
    assert report["jitter_ratio"] is None
    assert report["photometric_frames"] == 4 and report["photometric_rms_255"] is not None
    assert report["reference_detector"] == "dlib" and report["tracker"] == "test"


def test_evaluate_real_clip_refuses_mismatched_inputs(synthetic_clip, default_head, tmp_path):
    folder, tracking = synthetic_clip
    results = write_results(tmp_path / "results", default_head, tracking, folder, CLIP_SIZE, CLIP_SIZE)

    with pytest.raises(BadInput, match="do not exist"):
        evaluate_real_clip(tmp_path / "absent", None, default_head, "cpu", 1, quiet())
    other = dataclasses.replace(default_head, faces=default_head.faces[:, [0, 2, 1]])
    with pytest.raises(BadInput, match="topology"):
        evaluate_real_clip(results, None, other, "cpu", 1, quiet())
    short = tmp_path / "short"
    short.mkdir()
    for image in sorted(folder.glob("*.png"))[:3]:
        shutil.copy(image, short / image.name)
    with pytest.raises(BadInput, match=r"short has 3 frames .* need frame 3"):
        evaluate_real_clip(results, short, default_head, "cpu", 1, quiet())
    small = tmp_path / "small"
    small.mkdir()
    for i in range(4):
        write_rgb(small / f"{i:04d}.png", np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(BadInput, match="64x64"):
        evaluate_real_clip(results, small, default_head, "cpu", 1, quiet())
    with pytest.raises(BadInput, match="frame step"):
        evaluate_real_clip(results, None, default_head, "cpu", 0, quiet())


def test_evaluate_real_with_common_pixels_and_its_refusal(synthetic_clip, default_head, tmp_path):
    """`evaluate R --common-with OTHER`: the other's head is the one its result.json records; a
    track of other frames is refused before any scoring."""
    from backend.evaluation.evaluate import evaluate_real

    folder, tracking = synthetic_clip
    results = write_results(tmp_path / "results", default_head, tracking, folder, CLIP_SIZE, CLIP_SIZE)
    aside = write_results(tmp_path / "aside", default_head, shifted(tracking, 6.0), folder, CLIP_SIZE,
                          CLIP_SIZE)
    report = evaluate_real(results, None, None, "cpu", 1, quiet(), (aside,))
    assert report["photometric_common_with"] == [str(aside)]
    assert 0 < report["photometric_pixels_common"] < report["photometric_pixels_face"]
    later = write_results(tmp_path / "later", default_head, {**tracking, "frames": tracking["frames"] + 10},
                          folder, CLIP_SIZE, CLIP_SIZE)
    with pytest.raises(BadInput, match="later tracked none of the frames being scored"):
        evaluate_real(results, None, None, "cpu", 1, quiet(), (later,))
    larger = write_results(tmp_path / "larger", default_head, tracking, folder, 2 * CLIP_SIZE, 2 * CLIP_SIZE)
    with pytest.raises(BadInput, match=f"larger was tracked on {2 * CLIP_SIZE}x{2 * CLIP_SIZE} footage"):
        evaluate_real(results, None, None, "cpu", 1, quiet(), (larger,))
