"""The stand-in actor and the scores of personal-truth-benchmark: zero for the truth itself, the
default head's shape measured against the actor's, frames without a face left out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.evaluation.personal_truth_benchmark import (
    PersonalTruthBenchmarkConfig,
    goals,
    landmark_errors,
    surface_errors_mm,
)
from backend.formats.camera import project_points
from backend.formats.errors import BadInput


def _turned(angle_deg: float, distance_m: float) -> np.ndarray:
    a = math.radians(angle_deg)
    pose = np.eye(4)
    # Head space (+Z up, face toward -Y) to an OpenCV camera looking at the face.
    pose[:3, :3] = np.array([[math.cos(a), math.sin(a), 0], [0, 0, -1],
                             [-math.sin(a), math.cos(a), 0]])
    pose[:3, 3] = [0.0, 0.05, distance_m]
    return pose


def _performance(head, frames: int) -> dict[str, np.ndarray]:
    """tracking.npz-like arrays of `head` smiling more each frame, turning, every frame tracked."""
    smile = head.blendshape_names.index("mouthSmileLeft")
    vertices = np.stack([head.vertices + (i / frames) * head.blendshapes[smile] for i in range(frames)])
    pose = np.stack([_turned(10.0 * i, 0.6) for i in range(frames)])
    intrinsics = np.array([[500.0, 0, 160], [0, 500.0, 160], [0, 0, 1]])
    return {"frames": np.arange(frames), "vertices": vertices.astype(np.float32), "head_pose": pose,
            "intrinsics": intrinsics, "confidence": np.ones(frames, np.float32)}


@pytest.fixture(scope="module")
def actor():
    from backend.heads.ict_head import ict_actor_head

    return ict_actor_head()


@pytest.mark.data
def test_the_actor_is_coloured_unlike_the_default_head(actor, default_head):
    import torch

    from backend.render.texture import surface_in_uv

    # The median texel is skin: the actor's is far darker than the default head's.
    actor_skin = np.median(actor.albedo.reshape(-1, 3), axis=0)
    default_skin = np.median(default_head.albedo.reshape(-1, 3), axis=0)
    assert default_skin.mean() - actor_skin.mean() > 60
    # Lips are painted: texels of the upper lip are darker and redder than the skin.
    size = actor.albedo.shape[0]
    position, triangle = surface_in_uv(torch.as_tensor(actor.vertices), torch.as_tensor(actor.faces),
                                       torch.as_tensor(actor.uv), torch.as_tensor(actor.uv_faces), size)
    on = triangle.numpy() >= 0
    landmark = actor.vertices[actor.landmark_vertex]

    def colour_near(point: np.ndarray, radius_m: float) -> np.ndarray:
        near = (np.linalg.norm(position.numpy() - point, axis=-1) < radius_m) & on
        assert near.sum() > 20
        return actor.albedo[near].astype(float).mean(0)

    lips = colour_near(landmark[[51, 62]].mean(0), 0.003)  # the upper lip, outer to inner edge
    assert lips.sum() < actor_skin.astype(float).sum() - 40 and lips[0] - lips[2] > 20


@pytest.mark.data
def test_surface_error_is_zero_for_the_truth_and_measures_another_shape(actor, default_head):
    truth = _performance(actor, 3)
    same = surface_errors_mm(truth, actor, truth["vertices"], truth["frames"], actor, step=1)
    assert same.shape == (3,) and same.max() < 0.05
    # The default head tracked perfectly in place and expression still has another shape.
    other = {**_performance(default_head, 3)}
    stranger = surface_errors_mm(other, default_head, truth["vertices"], truth["frames"], actor, step=1)
    assert (stranger > 0.8).all()
    other["confidence"][1] = 0  # an untracked frame is never scored
    assert len(surface_errors_mm(other, default_head, truth["vertices"], truth["frames"], actor, step=1)) == 2
    assert len(surface_errors_mm(other, default_head, truth["vertices"], truth["frames"], actor, step=2)) == 1


@pytest.mark.data
def test_landmarks_of_the_truth_score_zero_and_a_shifted_track_its_shift(actor):
    truth = _performance(actor, 4)
    true_2d = project_points(truth["vertices"][:, actor.landmark_vertex].astype(np.float64),
                             truth["head_pose"], truth["intrinsics"])
    px, normalised = landmark_errors(truth, actor, true_2d, truth["frames"])
    assert px < 1e-6 and normalised < 1e-8
    px, normalised = landmark_errors(truth, actor, true_2d + np.array([3.0, 4.0]), truth["frames"])
    assert px == pytest.approx(5.0) and normalised > 0


def test_goals_need_every_clip_and_tracker():
    identity = {"default": {"mean_mm": 2.0}, "personal": {"mean_mm": 0.9}}
    row = lambda clip, model, surface, psnr: {"clip": clip, "tracker": "adapted", "model": model,  # noqa: E731
                                               "surface_mm_mean": surface, "decoded_texture_psnr_db": psnr}
    better = [row("a", "default", 2.0, 15.0), row("a", "personal", 1.0, 20.0)]
    assert goals(identity, better) == {"identity_halved": True, "surface_lower_everywhere": True,
                                       "psnr_higher_everywhere": True}
    worse_on_b = [*better, row("b", "default", 2.0, 15.0), row("b", "personal", 2.5, None)]
    assert goals({**identity, "personal": {"mean_mm": 1.2}}, worse_on_b) == {
        "identity_halved": False, "surface_lower_everywhere": False, "psnr_higher_everywhere": False}
    assert not goals(identity, [])["surface_lower_everywhere"]


def test_quick_clips_are_small_and_named_apart(tmp_path):
    full_personalize, full_tracked = PersonalTruthBenchmarkConfig(out=tmp_path).clips()
    personalize, tracked = PersonalTruthBenchmarkConfig(out=tmp_path, quick=True).clips()
    assert personalize.name == "quick-" + full_personalize.name
    assert personalize.yaw_deg == full_personalize.yaw_deg
    assert [c.frames for c in tracked] == [24] * len(full_tracked)
    assert all(c.domain.width == 160 and c.head == "ict-actor" for c in (personalize, *tracked))
    with pytest.raises(BadInput, match="--score-step"):
        PersonalTruthBenchmarkConfig(out=tmp_path, score_step=0)
