import torch

from backend.render.rasterize import barycentrics, interpolate, project, rasterize


def _two_triangles():
    # A small triangle at depth 1 in front of a large one at depth 2.
    screen = torch.tensor([[[10.0, 10, 1], [50, 10, 1], [10, 50, 1],
                            [0, 0, 2], [63, 0, 2], [0, 63, 2]]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    return screen, faces


def test_coverage_and_depth_order():
    screen, faces = _two_triangles()
    frags = rasterize(screen, faces, 64, 64)
    assert frags.triangle[0, 20, 20] == 0  # the near triangle wins
    assert frags.triangle[0, 5, 5] == 1  # only the far one covers this pixel
    assert frags.triangle[0, 60, 60] == -1  # outside both
    assert frags.depth[0, 20, 20] == 1.0
    # Drawing order must not matter: swap the faces.
    swapped = rasterize(screen, faces.flip(0), 64, 64)
    assert swapped.triangle[0, 20, 20] == 1  # index of the near triangle after the swap


def test_barycentrics_sum_to_one_and_reproduce_attributes():
    screen, faces = _two_triangles()
    frags = rasterize(screen, faces, 64, 64)
    weights = barycentrics(screen, faces, frags)
    assert torch.allclose(weights.sum(-1)[frags.mask], torch.tensor(1.0), atol=1e-5)
    # Interpolating x, y screen positions as attributes returns the pixel coordinates
    # (affine attributes at equal depth per triangle).
    values = interpolate(screen[0, :, :2], faces, frags, weights)
    ys, xs = torch.nonzero(frags.mask[0], as_tuple=True)
    assert torch.allclose(values[0, ys, xs, 0], xs.float(), atol=1e-3)
    assert torch.allclose(values[0, ys, xs, 1], ys.float(), atol=1e-3)


def test_triangles_behind_camera_and_nan_are_skipped():
    screen = torch.tensor([[[10.0, 10, -1], [50, 10, 1], [10, 50, 1],
                            [0, 0, float("nan")], [63, 0, 2], [0, 63, 2]]])
    frags = rasterize(screen, torch.tensor([[0, 1, 2], [3, 4, 5]]), 64, 64)
    assert not frags.mask.any()


def test_project_pinhole():
    k = torch.tensor([[100.0, 0, 31.5], [0, 100, 31.5], [0, 0, 1]])
    p = project(torch.tensor([[[0.0, 0, 2], [0.2, -0.1, 1]]]), k)
    assert torch.allclose(p[0, 0], torch.tensor([31.5, 31.5, 2]))
    assert torch.allclose(p[0, 1], torch.tensor([51.5, 21.5, 1]))
