"""Where the adaptation's losses settle with the pose known (backend/evaluation/loss_minima.py):
on frames rendered from the model's own decoded texture the runs see the true pose, camera and
crops (the true codes put every landmark on its detection), start where the oracles put them
and hold what they are told to; the frame sampling and the runs' settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.adaptation.adapt import _budget
from backend.adaptation.config import AdaptationConfig
from backend.dam.model_folder import DEFAULT_MODEL, load_model, load_model_head
from backend.decoded_textures import decoded_view_directions
from backend.encoder.encoder_file import has_encoder
from backend.evaluation.clip_making import FOOTAGE, HEAD, TRUTH
from backend.evaluation.loss_minima import (
    APPEARANCE,
    HELD,
    METHOD,
    RUNS,
    TEXTURE,
    LossMinimaConfig,
    clip_folders,
    loss_minima_on_clip,
    run_config,
    sampled_pairs,
)
from backend.formats.camera import centred_intrinsics, pose_matrix, project_points
from backend.formats.clip_files import Truth
from backend.formats.errors import BadInput
from backend.formats.head_file import save_head
from backend.head_space import HEAD_TO_FRONT_CAMERA
from backend.lab.capture import face_centre_and_height
from backend.movie_writer import write_movie
from backend.render.camera import head_to_camera
from backend.render.unlit import render_unlit
from backend.trackers.interface import Detections

pytestmark = pytest.mark.skipif(not has_encoder(DEFAULT_MODEL), reason="the default model has no encoder")


class Sink:
    def progress(self, stage, done, total, values=None):
        pass

    def log(self, message):
        pass

    def warning(self, message):
        pass


def test_pairs_are_sampled_every_step_frames_where_both_have_a_face():
    tracked = np.array([True, True, True, False, True, True, True, True, True])
    # t = 0, 3, 6: (3, 4) lacks a face at 3; (0, 1) and (6, 7) kept, firsts then seconds.
    np.testing.assert_array_equal(sampled_pairs(tracked, 3), [0, 6, 1, 7])
    assert len(sampled_pairs(np.zeros(5, bool), 2)) == 0


def test_each_run_keeps_its_losses_at_the_adaptation_defaults_and_takes_the_steps_asked():
    defaults = AdaptationConfig()
    for run, (kept, _, _) in RUNS.items():
        config = run_config(run, 37, 5)
        for name in ("texture", "landmark", "appearance", "prior", "smooth", "anchor"):
            expected = getattr(defaults, f"{name}_weight") if name in kept else 0.0
            assert getattr(config, f"{name}_weight") == expected, (run, name)
        assert config.fixed_focal and config.appearance_frames == 10
        tracked = np.zeros(40, bool)
        tracked[sampled_pairs(np.ones(40, bool), 8)] = True  # 5 pairs, as the command samples them
        assert _budget(tracked, config) == (10, 37)
    assert not RUNS[HELD].free_codes and RUNS[APPEARANCE].free_codes and RUNS[TEXTURE].losses == ("texture",)
    assert "anchor" not in RUNS[METHOD].losses


def test_bad_settings_and_a_folder_without_clips_are_refused(tmp_path: Path):
    with pytest.raises(BadInput, match="--frame-step 2"):
        LossMinimaConfig(clips=tmp_path, frame_step=2)
    with pytest.raises(BadInput, match="make-benchmark"):
        clip_folders(tmp_path)


def _rendered_clip(folder: Path, codes: torch.Tensor, shown: torch.Tensor) -> Detections:
    """A clip of the default head whose truth has the vertices of `codes` (F, Z) and whose footage
    shows the head decoded from `shown` (F, Z) in its own decoded texture (unlit, 160 px); the
    true landmarks as exact detections."""
    model, _ = load_model(DEFAULT_MODEL)
    head = load_model_head(DEFAULT_MODEL)
    frames = len(codes)
    centre, _ = face_centre_and_height(head)
    poses = []
    for yaw in np.radians(np.linspace(-8, 8, frames)):
        c, s = np.cos(yaw), np.sin(yaw)
        rotation = HEAD_TO_FRONT_CAMERA @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        poses.append(pose_matrix(rotation, np.array([0, 0, 0.6]) - rotation @ centre))
    pose = np.stack(poses).astype(np.float32)
    k = centred_intrinsics(400.0, 160, 160).astype(np.float32)
    with torch.no_grad():
        seen = model.decode_vertices(shown)
        texture = model.decode_texture_for_view(shown, torch.as_tensor(decoded_view_directions(pose, head)))
        images, _ = render_unlit(head_to_camera(seen, torch.as_tensor(pose)), torch.as_tensor(head.faces),
                                 torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces), texture.clamp(0, 1),
                                 torch.as_tensor(k), 160, 160)
        vertices = model.decode_vertices(codes).numpy()
    folder.mkdir()
    write_movie(((image.numpy() * 255).round().astype(np.uint8) for image in images), folder / FOOTAGE, 25.0,
                crf=0)
    save_head(head, folder / HEAD)
    landmarks = project_points(vertices[:, head.landmark_vertex].astype(np.float64), pose, k).astype(np.float32)
    Truth(frames=np.arange(frames), vertices=vertices, head_pose=pose, intrinsics=k,
          weights=np.zeros((frames, 0), np.float32), weight_names=(), landmarks_2d=landmarks, fps=25.0,
          width=160, height=160).save(folder / TRUTH)
    seen_landmarks = project_points(seen.numpy()[:, head.landmark_vertex].astype(np.float64), pose, k)
    return Detections(seen_landmarks.astype(np.float32), np.ones((frames, 68), np.float32),
                      np.ones(frames, bool))


@pytest.mark.parametrize("footage", ["truth", "other codes"])
def test_the_runs_hold_the_true_pose_and_start_where_the_oracles_put_them(tmp_path: Path, footage: str):
    """On footage of the truth the true codes put every landmark on its detection in the crops
    the runs use (so pose, camera and crops are the truth's) and the detection oracle starts at
    the truth; on footage of other codes the same codes miss the detections and the detection
    oracle starts elsewhere. Held codes never move."""
    generator = torch.Generator().manual_seed(3)
    latent = load_model(DEFAULT_MODEL)[0].config.latent
    codes = 0.7 * torch.randn(5, latent, generator=generator)
    shown = codes if footage == "truth" else codes + 1.2 * torch.randn(5, latent, generator=generator)
    clip = tmp_path / "clip"
    detections = _rendered_clip(clip, codes, shown)
    report = loss_minima_on_clip(clip, LossMinimaConfig(clips=clip, frame_step=3, steps=5), Sink(), detections)
    assert report["frames"] == 4 and set(report["runs"]) == set(RUNS)  # pairs (0, 1) and (3, 4)
    runs = report["runs"]
    held = runs[HELD]
    assert held["end_mm"] == held["start_mm"] == report["start_mm"]["dam-oracle"] < 0.05
    assert runs[APPEARANCE]["end_mm"] != runs[APPEARANCE]["start_mm"] != runs[TEXTURE]["end_mm"]
    landmark_at_truth = held["last"]["landmark"]  # L_L is computed in every run, weighted or not
    if footage == "truth":
        assert landmark_at_truth < 1e-3
        assert report["start_mm"]["detection-oracle"] < 0.15
        assert runs[METHOD]["end_mm"] < runs[METHOD]["start_mm"] + 0.05
    else:
        assert landmark_at_truth > 0.02
        assert report["start_mm"]["detection-oracle"] > 0.4
