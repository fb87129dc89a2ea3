"""A head and a tracked performance of any size, for timing the Blender import (`bench import`):
what matters there is vertices and frames, not likeness.

The head is a curved sheet facing -Y (an N x M grid of the head's size) with 52 ARKit shapes,
each a smooth bump; the performance plays smooth random weights on it, plus noise of a tenth of
a millimetre (so the ARKit-curves and compact-basis imports have an error to report, as on real
results), and turns the head slowly in front of a static camera.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..formats.head_file import HeadAsset, save_head
from ..formats.results_dir import TrackingArrays, write_arrays, write_summary
from ..heads.arkit import ARKIT_NAMES

NOISE_M = 0.0001
WIDTH, HEIGHT = 1280, 720


def synthetic_head(vertices: int, seed: int = 0) -> HeadAsset:
    """A head of about `vertices` vertices (a square grid), 52 ARKit shapes, landmarks on the
    grid where a face would have them."""
    side = max(4, round(vertices ** 0.5))
    u, v = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
    angle = (u - 0.5) * 2.4  # about 140 degrees of a cylinder of the head's radius
    points = np.stack([0.09 * np.sin(angle), -0.09 * np.cos(angle), 0.02 + 0.24 * v], -1)
    points = points.reshape(-1, 3).astype(np.float32)
    index = np.arange(side * side).reshape(side, side)
    quads = np.stack([index[:-1, :-1], index[:-1, 1:], index[1:, 1:], index[1:, :-1]], -1).reshape(-1, 4)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).astype(np.int32)
    uv = np.stack([u, v], -1).reshape(-1, 2).astype(np.float32)
    rng = np.random.default_rng(seed)
    centres = points[rng.integers(0, len(points), len(ARKIT_NAMES))]
    directions = rng.normal(size=(len(ARKIT_NAMES), 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    falloff = np.exp(-np.sum((points[None] - centres[:, None]) ** 2, -1) / (2 * 0.02 ** 2))
    shapes = (0.006 * falloff[..., None] * directions[:, None]).astype(np.float32)

    def grid(x: float, z: float) -> int:
        return int(index[round(z * (side - 1)), round(x * (side - 1))])

    landmarks = np.array([grid(0.5 + 0.4 * np.cos(a), 0.3 + 0.3 * np.sin(a))
                          for a in np.linspace(np.pi, 2 * np.pi, 68)], np.int32)
    landmarks[0], landmarks[16], landmarks[8] = grid(0.05, 0.55), grid(0.95, 0.55), grid(0.5, 0.05)
    for start, x in ((36, 0.35), (42, 0.65)):
        landmarks[start:start + 6] = [grid(x + 0.04 * np.cos(a), 0.6 + 0.02 * np.sin(a))
                                      for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]
    return HeadAsset(points, faces, uv, faces.copy(), shapes, list(ARKIT_NAMES), landmarks,
                     np.ones(68, bool), np.ones(len(points), bool))


def write_synthetic_results(directory: Path, head: HeadAsset, frames: int, fps: float = 25.0,
                            seed: int = 1) -> Path:
    """A complete results directory of `frames` frames of `head` (written in place: a bench's
    temp folder). Returns it."""
    rng = np.random.default_rng(seed)
    time = np.arange(frames) / fps
    phases = rng.uniform(0, 2 * np.pi, (2, len(ARKIT_NAMES)))
    rates = rng.uniform(0.1, 0.8, (2, len(ARKIT_NAMES)))
    weights = 0.5 + 0.25 * (np.sin(time[:, None] * rates[0] * 2 * np.pi + phases[0])
                            + np.sin(time[:, None] * rates[1] * 2 * np.pi + phases[1]))
    weights = np.clip(weights - 0.3, 0, 1).astype(np.float32)
    vertices = np.empty((frames, len(head.vertices), 3), np.float32)
    deltas = head.blendshapes.reshape(len(ARKIT_NAMES), -1)
    for start in range(0, frames, 256):
        block = slice(start, start + 256)
        moved = head.vertices.reshape(-1) + weights[block] @ deltas
        vertices[block] = (moved.reshape(len(moved), -1, 3)
                           + rng.normal(0, NOISE_M, (len(moved), len(head.vertices), 3)))
    yaw = 0.3 * np.sin(time * 0.4)
    poses = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
    # Head space (+Z up, facing -Y) seen by an OpenCV camera 0.6 m in front of the face.
    facing = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float32)
    for i, angle in enumerate(yaw):
        turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                         [0, 0, 1]], np.float32)
        poses[i, :3, :3] = facing @ turn
        poses[i, :3, 3] = [0.0, -0.15, 0.6]
    focal = 1.2 * WIDTH
    intrinsics = np.array([[focal, 0, (WIDTH - 1) / 2], [0, focal, (HEIGHT - 1) / 2], [0, 0, 1]],
                          np.float32)
    zeros = np.zeros((frames, 68, 2), np.float32)
    tracking = TrackingArrays(np.arange(frames), vertices, poses, intrinsics,
                              np.ones(frames, np.float32), zeros, np.ones((frames, 68), np.float32),
                              zeros, {"weights": weights, "weight_names": np.array(ARKIT_NAMES)})
    directory.mkdir(parents=True)
    write_arrays(directory, tracking, head)
    write_summary(directory, {"source": {"path": str(directory / "synthetic.mp4"), "fps": fps,
                                         "width": WIDTH, "height": HEIGHT,
                                         "frame_range": [0, frames - 1]},
                              "model": "synthetic", "settings": {}, "warnings": []}, head)
    return directory


def save_synthetic_head(path: Path, vertices: int) -> HeadAsset:
    head = synthetic_head(vertices)
    save_head(head, path)
    return head
