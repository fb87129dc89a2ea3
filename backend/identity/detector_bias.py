"""Taking MediaPipe's own face prior out of its points, by rendering and detecting again.

MediaPipe's face mesh is a regression with a strong prior: on renders of the default head given
a known identity, its points follow about 60% of the identity's displacement (docs/identity.md).
A fit to its points therefore stops short of the actor. The detector's error on a head is
measured by rendering the fitted head under the fitted poses and detecting on the renders: the
gap between where its points were found and where the embedded points project is the detector's
bias for that shape and view. The footage's detections, corrected by that gap, are what an
unbiased detector would have found; fitting to them again moves the head further toward the
actor (for a detector following a fraction a of a displacement, each round shrinks the
remaining error by 1 - a).
"""

from __future__ import annotations

import numpy as np
import torch

from ..formats.camera import centred_intrinsics, head_to_camera, pose_matrix
from ..formats.head_file import HeadAsset
from ..heads.landmark_embedding import albedo_for_rendering
from ..landmarks.mediapipe_detector import MediaPipeMesh
from ..render.rasterize import project
from ..render.shading import render_textured
from .dense_landmarks import DenseEmbedding
from .identity_fit import IdentityFit


def detector_bias(head: HeadAsset, vertices: np.ndarray, fit: IdentityFit, embedding: DenseEmbedding,
                  width: int, height: int, mesh: MediaPipeMesh) -> np.ndarray:
    """(F, 478, 2) pixels: MediaPipe's points on renders of the fitted head (rest shape vertices
    (V, 3) with each frame's fitted expression, pose and focal) less the embedded points'
    projections; zero for a frame whose render has no face found."""
    albedo_t = albedo_for_rendering(head)
    k = centred_intrinsics(fit.focal, width, height)
    poses = pose_matrix(fit.rotation, fit.translation)
    faces = torch.as_tensor(head.faces)
    bias = np.zeros((len(poses), 478, 2), np.float32)
    for f, pose in enumerate(poses):
        posed = vertices + np.einsum("k,kvc->vc", fit.weights[f], head.blendshapes)
        cam = torch.as_tensor(head_to_camera(posed, pose), dtype=torch.float32)[None]
        image, _ = render_textured(cam, faces, torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces),
                                   albedo_t, torch.as_tensor(k), height, width)
        found = mesh.points((torch.nan_to_num(image[0]).clamp(0, 1).numpy() * 255).astype(np.uint8))
        if found is None:
            continue
        points = torch.as_tensor(head_to_camera(embedding.points(posed, head.faces), pose),
                                 dtype=torch.float32)[None]
        expected = project(points, torch.as_tensor(k))[0, :, :2].numpy()
        bias[f] = found - expected
    return bias
