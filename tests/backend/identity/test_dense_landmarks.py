"""MediaPipe's 478 points placed on the default head: on its surface, where MediaPipe finds
them on renders the embedding never saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.formats.camera import head_to_camera, pose_matrix
from backend.heads.landmark_embedding import IMAGE_SIZE, view_camera
from backend.identity.dense_landmarks import (
    IRIS_POINTS,
    closest_surface_points,
    embed_dense_landmarks,
    face_oval_points,
    project_embedded,
)
from backend.landmarks.mediapipe_detector import MediaPipeMesh
from backend.render.shading import render_textured


@pytest.fixture(scope="module")
def embedding(default_head):
    return embed_dense_landmarks(default_head)


def test_silhouette_and_iris_points_are_not_fitted(embedding):
    assert not embedding.mask[face_oval_points()].any()
    assert not embedding.mask[IRIS_POINTS].any()
    assert embedding.mask.sum() >= 400


def test_embedded_points_land_on_the_detections_of_an_unseen_view(embedding, default_head):
    head = default_head
    rotation, translation, intrinsics = view_camera(head, 12.0)  # the embedding used 0 and +-25
    pose = pose_matrix(rotation, translation, np.float64)
    cam = torch.as_tensor(head_to_camera(head.vertices, pose), dtype=torch.float32)[None]
    albedo = torch.as_tensor(head.albedo).permute(2, 0, 1).float() / 255
    image, _ = render_textured(cam, torch.as_tensor(head.faces), torch.as_tensor(head.uv),
                               torch.as_tensor(head.uv_faces), albedo,
                               torch.as_tensor(intrinsics), IMAGE_SIZE, IMAGE_SIZE)
    mesh = MediaPipeMesh(video=False)
    try:
        detected = mesh.points((image[0].numpy() * 255).astype(np.uint8))
    finally:
        mesh.close()
    assert detected is not None
    error = np.linalg.norm(project_embedded(embedding, head.vertices, head.faces, pose, intrinsics)
                           - detected, axis=1)[embedding.mask]
    inter_ocular = np.linalg.norm(detected[33] - detected[263])
    print(f"median {np.median(error):.2f} px, p90 {np.percentile(error, 90):.2f} px, "
          f"inter-ocular {inter_ocular:.0f} px")
    assert np.median(error) < 0.02 * inter_ocular
    assert np.percentile(error, 90) < 0.05 * inter_ocular


def test_closest_surface_points_recover_points_on_triangles():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.float64)
    faces = np.array([[0, 1, 2], [1, 3, 4]])
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(3), size=20)
    triangles = rng.integers(0, 2, 20)
    points = np.einsum("pk,pkc->pc", weights, vertices[faces[triangles]])
    found, found_weights = closest_surface_points(points, vertices, faces)
    np.testing.assert_array_equal(found, triangles)
    np.testing.assert_allclose(found_weights, weights, atol=1e-9)
    # A point off the surface goes to the nearest one.
    (tri,), (w,) = closest_surface_points(np.array([[0.2, 0.2, -0.5]]), vertices, faces)
    assert tri == 0
    np.testing.assert_allclose(w, [0.6, 0.2, 0.2], atol=1e-9)
