"""The backend's rasterizer against Blender's Cycles: same head, same cameras (converted with
blender_addon.camera_conversion), silhouettes agree."""

from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest
import torch

from backend.render.rasterize import project, rasterize
from conftest import REPO_ROOT, blender_program


@pytest.mark.blender
def test_silhouette_matches_cycles(default_head, default_head_file, tmp_path):
    width, height = 320, 240
    k = np.array([[380.0, 0, 150.0], [0, 380, 128.0], [0, 0, 1]])  # off-centre principal point
    poses = {}
    for index, yaw in enumerate((0.0, 35.0)):
        a = np.radians(yaw)
        spin = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        rotation = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]) @ spin
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = [0.01, 0.02, 0.75] - rotation @ np.array([0, -0.05, 0.14])
        poses[index] = pose
    cameras = {"width": width, "height": height, "intrinsics": k.tolist(),
               "frames": {str(i): p.tolist() for i, p in poses.items()}}
    (tmp_path / "cameras.json").write_text(json.dumps(cameras))
    done = subprocess.run(blender_program("render_silhouette", "--head",
                                          str(default_head_file), "--cameras",
                                          str(tmp_path / "cameras.json"), "--out",
                                          str(tmp_path / "masks")), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for index, pose in poses.items():
        cycles = cv2.imread(str(tmp_path / "masks" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)[..., 3] > 127
        vertices = torch.tensor(default_head.vertices @ pose[:3, :3].T + pose[:3, 3], dtype=torch.float32)
        screen = project(vertices[None], torch.tensor(k, dtype=torch.float32))
        ours = rasterize(screen, torch.as_tensor(default_head.faces), height, width).mask[0].numpy()
        iou = (ours & cycles).sum() / (ours | cycles).sum()
        print(f"silhouette IoU view {index}: {iou:.5f}")
        assert iou > 0.99, (index, iou)
