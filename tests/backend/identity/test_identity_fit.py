"""Fitting an identity: a known random identity of the default head is recovered from exact
projections and from Cycles renders of it (errors after rigid + scale alignment, relative to
the identity's own size); the frames chosen cover the turns; bad footage is refused or warned
about."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from backend.evaluation.clip_making import FOOTAGE, make_clips
from backend.evaluation.clip_specs import PROCEDURAL, ClipSpec, Domain
from backend.evaluation.identity_benchmark import random_identity
from backend.events import EventSink
from backend.formats.errors import BadInput, NoFace
from backend.formats.head_file import load_head, save_head
from backend.identity.dense_landmarks import embed_dense_landmarks
from backend.identity.frame_choice import MIN_YAW_SPAN_DEG, choose_frames, frame_coverage
from backend.identity.identity_basis import identity_basis
from backend.identity.identity_fit import IdentityFitConfig, fit_identity
from backend.identity.personal_head import FitIdentityConfig, run_fit_identity
from backend.movie_writer import write_movie
from backend.similarity import aligned_distances
from tests.conftest import run_backend, yawed_poses


@pytest.fixture(scope="module")
def basis():
    return identity_basis()


@pytest.fixture(scope="module")
def embedding(default_head):
    return embed_dense_landmarks(default_head)


def face_errors_mm(head, fitted_vertices, true_vertices) -> tuple[float, float]:
    """(default head's, fitted head's) mean face-region distance to the truth after rigid +
    scale alignment, millimetres."""
    face = head.face_region
    default = aligned_distances(head.vertices[face].astype(np.float64), true_vertices[face]).mean()
    fitted = aligned_distances(fitted_vertices[face].astype(np.float64), true_vertices[face]).mean()
    return default * 1000, fitted * 1000


def project(points: np.ndarray, pose: np.ndarray, focal: float, size: int) -> np.ndarray:
    cam = points @ pose[:3, :3].T + pose[:3, 3]
    return cam[:, :2] / cam[:, 2:] * focal + (size - 1) / 2


def test_an_identity_is_recovered_from_exact_projections(default_head, basis, embedding):
    head = default_head
    truth = head.vertices + basis.deltas(random_identity(basis, 1))
    rng = np.random.default_rng(2)
    poses = yawed_poses(head, list(np.linspace(-35, 35, 20)))
    points = []
    for pose in poses:
        weights = np.zeros(len(head.blendshape_names))
        weights[rng.choice(len(weights), 3, replace=False)] = rng.uniform(0, 0.5, 3)
        posed = truth + np.einsum("k,kvc->vc", weights, head.blendshapes)
        points.append(project(embedding.points(posed, head.faces), pose, 700.0, 512)
                      + rng.normal(0, 0.5, (478, 2)))
    fit = fit_identity(head, basis, embedding, np.array(points, np.float32), 512, 512)
    default_mm, fitted_mm = face_errors_mm(head, head.vertices + basis.deltas(fit.coefficients), truth)
    print(f"face error: default head {default_mm:.2f} mm, fitted {fitted_mm:.2f} mm")
    # The prior (0.1) holds back what the points barely pin: 0.97 mm at a prior of 0.01, 1.78 at
    # 0.1; the default keeps the detector's noise out of real clips (docs/identity.md).
    assert fitted_mm < 0.4 * default_mm
    assert fit.residual_px.mean() < 1.5


def test_frames_are_chosen_to_cover_the_turns():
    yaw = np.concatenate([np.zeros(50), np.linspace(-30, 30, 7), np.full(3, np.nan)])
    pitch = np.zeros_like(yaw)
    chosen = choose_frames(yaw, pitch, 8)
    assert len(chosen) == 8
    assert {-30.0, 30.0} <= set(yaw[chosen])
    assert (yaw[chosen] == 0).sum() == 1 or np.isclose(yaw[chosen], 0).sum() <= 2  # one frontal view


def test_a_frontal_or_short_clip_is_warned_about(default_head, embedding):
    head = default_head
    template = embedding.points(head.vertices, head.faces)
    frontal = np.array([project(template, pose, 700.0, 512) for pose in yawed_poses(head, [0, 2, -2, 1])])
    coverage = frame_coverage(frontal, template, embedding.mask, 512, 512, 24)
    assert abs(coverage.yaw_span_deg - 4.0) < 1.0
    text = " ".join(coverage.warnings)
    assert f"under {MIN_YAW_SPAN_DEG:.0f}" in text and "only 4 frame(s) show a face" in text
    turning = np.array([project(template, pose, 700.0, 512)
                        for pose in yawed_poses(head, list(np.linspace(-30, 30, 10)))])
    assert frame_coverage(turning, template, embedding.mask, 512, 512, 24).warnings == []


@pytest.fixture(scope="module")
def identity_clip(default_head, basis, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A Cycles clip of the default head with a known random identity turning up to 35 degrees
    (4 frames a second: 16 frames span both sides of the procedural head turns)."""
    folder = tmp_path_factory.mktemp("identity")
    truth = basis.reshaped(default_head, random_identity(basis, 7))
    save_head(truth, folder / "actor.npz")
    spec = ClipSpec("identity-check", str(folder / "actor.npz"), PROCEDURAL, 16,
                    Domain(light="studio", width=256, height=256, samples=8, noise=2.0), fps=4.0,
                    yaw_deg=35.0)
    (clip,) = make_clips((spec,), folder / "clips", 0, EventSink(json_lines=False))
    return clip, truth.vertices


def test_an_identity_is_recovered_from_cycles_renders(identity_clip, default_head, tmp_path):
    clip, truth = identity_clip
    # The landmark stages alone: the shading stage after them has its own test (test_shading_fit.py)
    # and would double this one's time.
    out, report = run_fit_identity(FitIdentityConfig(footage=clip / FOOTAGE, out=tmp_path / "actor.npz",
                                                     sample_frames=16, identity_frames=16, albedo_size=256,
                                                     fit=IdentityFitConfig(shading_steps=0)),
                                   EventSink(json_lines=False))
    fitted = load_head(out)
    assert fitted.topology_hash == default_head.topology_hash
    np.testing.assert_array_equal(fitted.blendshapes, default_head.blendshapes)
    default_mm, fitted_mm = face_errors_mm(default_head, fitted.vertices, truth)
    print(f"face error: default head {default_mm:.2f} mm, fitted {fitted_mm:.2f} mm; {report}")
    assert report["frames_with_face"] == 16 and report["warnings"] == []
    assert report["settings"]["identity_frames"] == 16 and report["settings"]["shading_steps"] == 0
    # MediaPipe's points follow about 60% of an identity's displacement (its own face prior
    # holds the rest; docs/identity.md): fitted to them once, 5.32 -> 4.26 mm here (0.80); with
    # the two default rounds taking that prior out, 3.62 mm (0.68).
    assert fitted_mm < 0.75 * default_mm
    assert fitted.albedo.shape == (256, 256, 3) and report["albedo"]["observed_face_fraction"] > 0.8


def test_the_command_writes_a_head_and_a_report_and_refuses_to_overwrite(identity_clip, tmp_path):
    clip, _ = identity_clip
    out, report_path = tmp_path / "actor.npz", tmp_path / "report.json"
    args = ["fit-identity", str(clip / FOOTAGE), "--out", str(out), "--sample-frames", "6",
            "--identity-frames", "6", "--full-steps", "50", "--detector-rounds", "1",
            "--albedo-size", "128", "--shading-steps", "20", "--json", str(report_path), "--events"]
    done = run_backend(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert events[-1] == {"event": "result", "path": str(out)}
    assert {"detect", "fit identity", "shading", "albedo"} <= {e["stage"] for e in events
                                                                if e["event"] == "progress"}
    report = json.loads(report_path.read_text())
    assert report["frames_fitted"] and report["settings"]["shading_steps"] == 20
    assert "shading" in report["seconds"]
    again = run_backend(*args)
    assert again.returncode != 0 and "already exists" in again.stdout


def test_footage_without_a_face_is_refused(tmp_path):
    video = write_movie((np.full((64, 64, 3), 90, np.uint8) for _ in range(5)), tmp_path / "wall.mp4", 25)
    with pytest.raises(NoFace, match="no face found on any of the 5 frames"):
        run_fit_identity(FitIdentityConfig(footage=video, out=tmp_path / "x.npz"), EventSink(json_lines=False))
    assert not (tmp_path / "x.npz").exists()


def test_footage_of_several_people_is_refused(identity_clip, tmp_path):
    import cv2

    clip, _ = identity_clip
    capture = cv2.VideoCapture(str(clip / FOOTAGE))
    frames = []
    while len(frames) < 6:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(np.hstack([frame[..., ::-1], frame[:, ::-1, ::-1]]))  # two faces side by side
    capture.release()
    video = write_movie(frames, tmp_path / "two.mp4", 25)
    with pytest.raises(BadInput, match="show more than one face"):
        run_fit_identity(FitIdentityConfig(footage=video, out=tmp_path / "x.npz"), EventSink(json_lines=False))


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(BadInput, match="--full-steps"):
        IdentityFitConfig(full_steps=0)
    with pytest.raises(BadInput, match="--identity-prior"):
        IdentityFitConfig(identity_prior=-1)
    with pytest.raises(BadInput, match="--sample-frames"):
        FitIdentityConfig(footage=Path("x.mp4"), out=Path("y.npz"), sample_frames=0)
    with pytest.raises(BadInput, match="--albedo-size"):
        FitIdentityConfig(footage=Path("x.mp4"), out=Path("y.npz"), albedo_size=10)
    with pytest.raises(BadInput, match="--focal-px"):
        IdentityFitConfig(focal_px=0.0)


def test_yawed_view_angles_are_measured(default_head, embedding):
    from backend.identity.frame_choice import head_angles

    template = embedding.points(default_head.vertices, default_head.faces)
    for yaw in (-30.0, 0.0, 20.0):
        (pose,) = yawed_poses(default_head, [yaw])
        measured, pitch = head_angles(project(template, pose, 700.0, 512), template, embedding.mask, 512, 512)
        assert abs(abs(measured) - abs(yaw)) < 1.0 and abs(pitch) < 1.0
    assert math.isfinite(measured)
