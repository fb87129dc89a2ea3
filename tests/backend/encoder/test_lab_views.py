"""The encoder's training views carry the landmarks the tracker's detector finds on them."""

import json
from pathlib import Path

import numpy as np
import torch

from backend.dam.model_folder import load_model, load_model_head
from backend.encoder.crop import CROP_POINTS
from backend.encoder.lab_views import VIEWS_FORMAT, LabViews, encoder_expressions, lab_renderer, make_views
from backend.events import EventSink
from backend.formats.camera import project_points
from backend.lab.capture import expression_weights

DEFAULT_MODEL = Path(__file__).parents[3] / "backend/models/default"


def test_views_hold_the_detectors_landmarks_near_the_truth(tmp_path):
    head = load_model_head(DEFAULT_MODEL)
    dam, _ = load_model(DEFAULT_MODEL)
    weights = np.zeros((3, len(head.blendshape_names)), np.float32)
    weights[1, list(head.blendshape_names).index("jawOpen")] = 1.0
    folder = make_views(head, dam, weights, 2, 128, 5, tmp_path / "views", EventSink(json_lines=False))
    views = LabViews.open(folder)
    info = json.loads((folder / "views.json").read_text())
    assert info["format"] == VIEWS_FORMAT and info["detector"] == "mediapipe"
    assert views.detected.shape == (6, 68, 2) and views.detected_found.mean() >= 0.5
    with torch.no_grad():
        vertices = lab_renderer(head, dam).vertices(torch.as_tensor(weights)).numpy()[views.expression]
    truth = project_points(vertices[:, head.landmark_vertex], views.poses, views.intrinsics)
    found = views.detected_found
    error = np.linalg.norm(views.detected[found] - truth[found], axis=-1)[:, CROP_POINTS]
    # A detector's error: a few pixels of a 128-px crop, not a misplaced face.
    assert error.mean() < 5.0
    assert not (tmp_path / "views.partial").exists()


def test_training_expressions_are_as_dense_as_performances_and_seeded():
    names = list(load_model_head(DEFAULT_MODEL).blendshape_names)
    weights = encoder_expressions(names, 400, np.random.default_rng(0))
    lab = expression_weights(names, 400, np.random.default_rng(0))
    assert weights.shape == (400, len(names)) and weights.min() >= 0 and weights.max() <= 1
    assert np.array_equal(weights, encoder_expressions(names, 400, np.random.default_rng(0)))
    # Performances hold 9-16 shapes above 0.05 per frame; the lab sampler about 3.
    assert (weights > 0.05).sum(1).mean() > 2 * (lab > 0.05).sum(1).mean()
    left, right = names.index("mouthSmileLeft"), names.index("mouthSmileRight")
    assert np.corrcoef(weights[:, left], weights[:, right])[0, 1] > 0.3
