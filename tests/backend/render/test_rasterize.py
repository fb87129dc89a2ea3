import torch

from backend.render.rasterize import Fragments, barycentrics, interpolate, project, rasterize


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


def test_an_occluded_triangle_never_wins():
    """Random overlapping triangles against a brute-force per-pixel depth test."""
    generator = torch.Generator().manual_seed(0)
    triangles = 40
    xy = torch.rand(triangles, 1, 2, generator=generator) * 48 + torch.randn(
        triangles, 3, 2, generator=generator) * 8
    depth = (torch.rand(triangles, 1, 1, generator=generator) + 1).expand(-1, 3, 1)
    screen = torch.cat([xy, depth], -1).view(1, -1, 3)
    faces = torch.arange(triangles * 3).view(triangles, 3)
    frags = rasterize(screen, faces, 48, 48)
    ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    best = torch.full((48, 48), float("inf"))
    for t in range(triangles):
        (x0, y0), (x1, y1), (x2, y2) = xy[t].tolist()
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-9:
            continue
        w0 = ((x1 - xs) * (y2 - ys) - (x2 - xs) * (y1 - ys)) / area
        w1 = ((x2 - xs) * (y0 - ys) - (x0 - xs) * (y2 - ys)) / area
        inside = (w0 >= 0) & (w1 >= 0) & (1 - w0 - w1 >= 0)
        best = torch.where(inside, torch.minimum(best, depth[t, 0, 0]), best)
    covered = torch.isfinite(best)
    assert torch.equal(frags.mask[0], covered)
    torch.testing.assert_close(frags.depth[0][covered], best[covered], atol=2e-6, rtol=0)


def test_degenerate_triangles_cover_nothing():
    screen = torch.tensor([[[5.0, 5, 1], [20, 20, 1], [35, 35, 1], [5, 5, 1]]])
    frags = rasterize(screen, torch.tensor([[0, 1, 2], [0, 3, 1]]), 40, 40)
    assert not frags.mask.any()


def test_backface_culling_keeps_what_faces_the_camera(default_head):
    from backend.heads.landmark_embedding import view_camera

    rotation, translation, k = view_camera(default_head, 0.0)
    vertices = torch.tensor(default_head.vertices @ rotation.T + translation, dtype=torch.float32)
    screen = project(vertices[None], torch.tensor(k, dtype=torch.float32))
    faces = torch.as_tensor(default_head.faces)
    plain = rasterize(screen, faces, 256, 256)
    culled = rasterize(screen, faces, 256, 256, cull_backfaces=True)
    # The visible surface faces the camera: culling changes (almost) nothing.
    assert (plain.triangle == culled.triangle).float().mean() > 0.99
    reversed_faces = rasterize(screen, faces.flip(1), 256, 256, cull_backfaces=True)
    assert (plain.triangle == reversed_faces.triangle)[plain.mask].float().mean() < 0.1


def test_a_pixel_whose_perspective_weights_cancel_gets_finite_weights_and_gradients():
    # A sliver's float32 weights can leave [0, 1]: at the pixel p0 - p1 + p2 the screen weights
    # are exactly (1, -1, 1), and with depths (1, 0.5, 1) their perspective sum is exactly 0.
    screen = torch.tensor([[[10.0, 10, 1], [20, 10, 0.5], [10, 20, 1]]], requires_grad=True)
    faces = torch.tensor([[0, 1, 2]])
    triangle = torch.full((1, 32, 32), -1, dtype=torch.int64)
    triangle[0, 20, 0] = 0  # as a rasterizer's rounding might claim it
    fragments = Fragments(triangle=triangle, depth=torch.ones(1, 32, 32))
    weights = barycentrics(screen, faces, fragments)
    assert torch.isfinite(weights).all()
    assert torch.allclose(weights[0, 20, 0], torch.full((3,), 1 / 3))
    (weights * torch.arange(3.0)).sum().backward()
    assert torch.isfinite(screen.grad).all()
