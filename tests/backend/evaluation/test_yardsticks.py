"""The suite's reference rows (backend/evaluation/yardsticks.py): the neutral head scores exactly
the rest head's error, the DAM oracle gets closer to true frames of the default head than the
rest head does, seeded and independent of how frames are batched; the landmark oracle lands on
the true landmarks, the detection oracle is it on exact detections and pays for noisy ones;
the oracles apply to the model's own head only; the suite caches a row by its key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from backend.dam.model_folder import DEFAULT_MODEL, load_model
from backend.evaluation import suite
from backend.evaluation.metrics import vertex_errors_mm
from backend.evaluation.suite import SuiteKeys, score_reference_clip
from backend.evaluation.yardsticks import (
    DAM_ORACLE,
    DETECTION_ORACLE,
    LANDMARK_ORACLE,
    LANDMARK_ORACLE_SETTINGS,
    NEUTRAL,
    ORACLE,
    fit_latents,
    reference_result,
)
from backend.formats.camera import project_points
from backend.formats.clip_files import Truth
from backend.formats.errors import BadInput
from backend.formats.head_file import HeadAsset, save_head
from backend.trackers.interface import Detections
from conftest import square_head_fields


def synthetic_truth(head: HeadAsset, frames: int, seed: int = 0) -> Truth:
    """A clip's truth without rendering: a few blendshapes at random weights per frame (each
    frame draws 6 of the head's channels (all when fewer) in [0, 0.7]), the head 0.6 m in front of a 320 px
    camera, turning a little."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((frames, len(head.blendshape_names)), np.float32)
    drawn = min(6, len(head.blendshape_names))
    for f in range(frames):
        channels = rng.choice(len(head.blendshape_names), drawn, replace=False)
        weights[f, channels] = rng.uniform(0.2, 0.7, drawn)
    vertices = (head.vertices + np.einsum("fk,kvc->fvc", weights, head.blendshapes)).astype(np.float32)
    pose = np.tile(np.eye(4), (frames, 1, 1))
    for f, yaw in enumerate(np.radians(np.linspace(-10, 10, frames))):
        c, s = np.cos(yaw), np.sin(yaw)
        turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        pose[f, :3, :3] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]) @ turn  # -Y faces the camera
        pose[f, :3, 3] = [0.0, 0.1, 0.6]
    intrinsics = np.array([[500, 0, 159.5], [0, 500, 159.5], [0, 0, 1]])
    landmarks = project_points(vertices[:, head.landmark_vertex].astype(np.float64), pose, intrinsics)
    return Truth(frames=np.arange(frames), vertices=vertices, head_pose=pose.astype(np.float32),
                 intrinsics=intrinsics.astype(np.float32), weights=weights,
                 weight_names=tuple(head.blendshape_names), landmarks_2d=landmarks.astype(np.float32),
                 fps=25.0, width=320, height=320)


@pytest.fixture(scope="module")
def model():
    return load_model(DEFAULT_MODEL)[0]


def test_neutral_row_is_the_rest_head_error_exactly(default_head):
    truth = synthetic_truth(default_head, 5)
    result = reference_result(NEUTRAL, truth, default_head)
    rest = np.broadcast_to(default_head.vertices, truth.vertices.shape).astype(np.float32)
    expected = vertex_errors_mm(rest, truth.vertices, default_head.face_region)
    assert result.errors.vertex_mm_mean == expected.mean()
    np.testing.assert_array_equal(result.errors.vertex_mm_per_frame, expected.mean(1))
    assert result.errors.vertex_mm_mean > 0.5  # the frames do move the face
    assert result.errors.rotation_deg_mean < 0.02  # the true pose (float32 arccos: not 0)
    np.testing.assert_array_equal(result.tracking["head_pose"], truth.head_pose)
    assert result.errors.frames == 5 and result.errors.fraction_tracked == 1


def test_dam_oracle_gets_closer_than_the_rest_head(default_head, model):
    truth = synthetic_truth(default_head, 8, seed=1)
    settings = replace(ORACLE, steps=150)
    oracle = reference_result(DAM_ORACLE, truth, default_head, settings=settings)
    neutral = reference_result(NEUTRAL, truth, default_head)
    assert oracle.tracking["latent"].shape == (8, model.config.latent)
    # Per frame, not only on average: the fit may never leave a frame worse than no expression.
    assert (oracle.errors.vertex_mm_per_frame < 0.5 * neutral.errors.vertex_mm_per_frame).all(), (
        oracle.errors.vertex_mm_per_frame, neutral.errors.vertex_mm_per_frame)
    assert oracle.errors.landmark_px_mean < neutral.errors.landmark_px_mean


def test_oracle_fit_is_seeded_and_independent_of_the_batch(default_head, model):
    truth = synthetic_truth(default_head, 6, seed=2)
    short = replace(ORACLE, steps=12)
    one, _ = fit_latents(model, truth.vertices, default_head.face_region, short)
    again, _ = fit_latents(model, truth.vertices, default_head.face_region, short)
    np.testing.assert_array_equal(one, again)
    batched, _ = fit_latents(model, truth.vertices, default_head.face_region, replace(short, batch=4))
    np.testing.assert_allclose(batched, one, atol=1e-5)
    other, _ = fit_latents(model, truth.vertices, default_head.face_region, replace(short, seed=1))
    assert not np.array_equal(other, one)


def test_the_oracle_applies_to_the_models_own_head_only():
    square = HeadAsset(**square_head_fields())
    truth = synthetic_truth(square, 3)
    assert reference_result(DAM_ORACLE, truth, square) is None
    assert reference_result(NEUTRAL, truth, square).errors.vertex_mm_mean > 0


def test_the_suite_keeps_a_reference_row_for_its_key(tmp_path: Path, default_head, monkeypatch):
    clip = tmp_path / "clips" / "synthetic"
    clip.mkdir(parents=True)
    synthetic_truth(default_head, 4).save(clip / "truth.npz")
    save_head(default_head, clip / "head.npz")
    calls = []
    compute = suite.reference_on_clip

    def counted(name: str, folder: Path, **kwargs):
        calls.append(name)
        return compute(name, folder, **kwargs)

    monkeypatch.setattr(suite, "reference_on_clip", counted)
    keys, work = SuiteKeys(), tmp_path / "work"
    first = score_reference_clip(clip, NEUTRAL, work, "cpu", keys)
    assert score_reference_clip(clip, NEUTRAL, work, "cpu", keys) == first
    assert calls == [NEUTRAL] and first["reference"] == NEUTRAL and first["frames"] == 4
    assert (work / "scores" / "references" / NEUTRAL / "synthetic.npz").is_file()
    synthetic_truth(default_head, 4, seed=9).save(clip / "truth.npz")  # another clip content
    second = score_reference_clip(clip, NEUTRAL, work, "cpu", keys)
    assert calls == [NEUTRAL, NEUTRAL] and second["vertex_mm_mean"] != first["vertex_mm_mean"]
    assert "models/default/weights.safetensors" in str(
        suite.reference_sources(DAM_ORACLE).code)  # the oracle's key hashes the model's weights


def test_the_landmark_oracle_fits_the_true_landmarks_better_than_the_rest_head(default_head):
    truth = synthetic_truth(default_head, 6, seed=3)
    settings = replace(LANDMARK_ORACLE_SETTINGS, steps=150)
    oracle = reference_result(LANDMARK_ORACLE, truth, default_head, landmark_settings=settings)
    neutral = reference_result(NEUTRAL, truth, default_head)
    assert oracle.errors.landmark_px_mean < 0.3 * neutral.errors.landmark_px_mean, (
        oracle.errors.landmark_px_mean, neutral.errors.landmark_px_mean)
    assert (oracle.errors.vertex_mm_per_frame < neutral.errors.vertex_mm_per_frame).all(), (
        oracle.errors.vertex_mm_per_frame, neutral.errors.vertex_mm_per_frame)


def _detections(truth: Truth, noise_px: float, seed: int = 0) -> Detections:
    rng = np.random.default_rng(seed)
    points = truth.landmarks_2d + rng.normal(0, noise_px, truth.landmarks_2d.shape)
    frames = len(truth.frames)
    return Detections(points.astype(np.float32), np.ones((frames, 68), np.float32), np.ones(frames, bool))


def test_the_detection_oracle_pays_for_the_detectors_noise(default_head):
    truth = synthetic_truth(default_head, 6, seed=4)
    settings = replace(LANDMARK_ORACLE_SETTINGS, steps=150)
    exact = reference_result(DETECTION_ORACLE, truth, default_head, detections=_detections(truth, 0.0),
                             landmark_settings=settings)
    perfect = reference_result(LANDMARK_ORACLE, truth, default_head, landmark_settings=settings)
    # Detections on the true points are the landmark oracle itself.
    np.testing.assert_allclose(exact.tracking["vertices"], perfect.tracking["vertices"], atol=1e-6)
    noisy = reference_result(DETECTION_ORACLE, truth, default_head, detections=_detections(truth, 4.0),
                             landmark_settings=settings)
    assert noisy.errors.vertex_mm_mean > perfect.errors.vertex_mm_mean + 0.1, (
        noisy.errors.vertex_mm_mean, perfect.errors.vertex_mm_mean)


def test_the_detection_oracle_leaves_frames_without_a_face_untracked(default_head):
    truth = synthetic_truth(default_head, 5, seed=5)
    detections = _detections(truth, 0.5)
    detections.found[2] = False
    detections.confidence[2] = 0
    result = reference_result(DETECTION_ORACLE, truth, default_head, detections=detections,
                              landmark_settings=replace(LANDMARK_ORACLE_SETTINGS, steps=20))
    assert result.tracking["confidence"].tolist() == [1, 1, 0, 1, 1]
    assert result.errors.frames == 4 and result.errors.frames_untracked == 1


def test_the_detection_oracle_refuses_detections_of_another_clip(default_head):
    truth = synthetic_truth(default_head, 5, seed=6)
    with pytest.raises(BadInput, match="needs the footage's landmark detections"):
        reference_result(DETECTION_ORACLE, truth, default_head)
    shorter = _detections(synthetic_truth(default_head, 3), 0.5)
    with pytest.raises(BadInput, match="3 frames of detections for a truth of 5"):
        reference_result(DETECTION_ORACLE, truth, default_head, detections=shorter)


def test_the_landmark_oracles_apply_to_the_models_own_head_only():
    square = HeadAsset(**square_head_fields())
    truth = synthetic_truth(square, 3)
    assert reference_result(LANDMARK_ORACLE, truth, square) is None
    assert reference_result(DETECTION_ORACLE, truth, square, detections=_detections(truth, 0.5)) is None


def test_only_the_detection_oracle_is_keyed_by_the_detection_code():
    detection = {path.name for path in suite.reference_sources(DETECTION_ORACLE).code}
    assert {"detection_cache.py", "mediapipe_detector.py"} <= detection
    for name in (NEUTRAL, DAM_ORACLE, LANDMARK_ORACLE):
        assert "detection_cache.py" not in {path.name for path in suite.reference_sources(name).code}
