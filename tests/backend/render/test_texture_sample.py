"""Texture sampling: bilinear, differentiable, and safe at a non-finite coordinate (grid_sample's
CPU backward reads outside the texture at a NaN and kills the process: checked in a child process
so a regression fails this test instead of the whole run)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from backend.render.texture import sample

REPO = Path(__file__).resolve().parents[3]


def test_sampling_is_bilinear_with_uv_origin_bottom_left():
    texture = torch.arange(4.0).view(1, 2, 2)  # rows top to bottom: [0, 1], [2, 3]
    uv = torch.tensor([[[[0.25, 0.75], [0.75, 0.25], [0.5, 0.5]]]])
    values = sample(texture, uv)[0, 0, :, 0]
    assert torch.allclose(values, torch.tensor([0.0, 3.0, 1.5]))


def test_a_nan_or_inf_coordinate_samples_the_corner_without_gradient_or_crash():
    program = textwrap.dedent("""
        import torch
        from backend.render.texture import sample
        texture = torch.rand(3, 64, 64, requires_grad=True)
        uv = torch.rand(1, 96, 96, 2)
        uv[0, 10:40, 10:40] = float("nan")
        uv[0, 50:60, 50:60, 0] = float("inf")
        uv.requires_grad_(True)
        for _ in range(10):
            out = sample(texture, uv)
            out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(texture.grad).all()
        assert torch.isfinite(uv.grad).all() and (uv.grad[0, 10:40, 10:40] == 0).all()
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])
