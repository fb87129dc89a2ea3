"""Unlit textured rendering (render/unlit.py) and the vertex-colour render (render/shading.py):
known answers on a flat square facing the camera."""

import torch

from backend.render.shading import render_vertex_colours
from backend.render.unlit import render_unlit

SIZE = 64
INTRINSICS = torch.tensor([[64.0, 0, 31.5], [0, 64.0, 31.5], [0, 0, 1]])


def square() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A square 0.5 m wide, 1 m in front of the camera (about 32 px wide), its UV the unit
    square with u along +x and v up (image -y). Returns vertices (1, 4, 3), faces, uv, uv_faces."""
    vertices = torch.tensor([[[-0.25, 0.25, 1.0], [0.25, 0.25, 1.0], [0.25, -0.25, 1.0],
                              [-0.25, -0.25, 1.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    return vertices, faces, uv, faces


def test_the_image_is_the_texture_looked_up_without_shading():
    vertices, faces, uv, uv_faces = square()
    # A ramp in u: each texel column holds its own u (texel centres).
    ramp = ((torch.arange(16) + 0.5) / 16).expand(16, 16)[None]
    image, fragments = render_unlit(vertices, faces, uv, uv_faces, ramp, INTRINSICS, SIZE, SIZE)
    assert image.shape == (1, SIZE, SIZE, 1)
    ys, xs = torch.nonzero(fragments.mask[0], as_tuple=True)
    assert len(xs) > 900  # about 32 x 32 pixels
    u = (xs.float() - 31.5) / 32 + 0.5  # the pixel centre's u on the square
    inner = (u > 1 / 32) & (u < 1 - 1 / 32)  # bilinear lookups clamp at the border texels
    assert torch.allclose(image[0, ys, xs, 0][inner], u[inner], atol=1e-4)
    assert (image[0][~fragments.mask[0]] == 0).all()


def test_one_texture_per_image_and_a_window_is_its_crop():
    vertices, faces, uv, uv_faces = square()
    both = vertices.expand(2, -1, -1)
    colours = torch.stack([torch.full((3, 8, 8), 0.2), torch.full((3, 8, 8), 0.7)])
    image, fragments = render_unlit(both, faces, uv, uv_faces, colours, INTRINSICS, SIZE, SIZE)
    assert torch.allclose(image[0][fragments.mask[0]], torch.tensor(0.2))
    assert torch.allclose(image[1][fragments.mask[1]], torch.tensor(0.7))

    ramp = torch.rand(2, 32, 32)
    full, full_fragments = render_unlit(vertices, faces, uv, uv_faces, ramp, INTRINSICS, SIZE, SIZE)
    x0, y0, width, height = 20, 24, 30, 20
    window, window_fragments = render_unlit(vertices, faces, uv, uv_faces, ramp, INTRINSICS, height,
                                            width, origin=(x0, y0))
    crop = (slice(None), slice(y0, y0 + height), slice(x0, x0 + width))
    same = window_fragments.mask == full_fragments.mask[crop]
    assert same.float().mean() > 0.99  # pixel centres on an edge may round either way
    both_covered = window_fragments.mask & full_fragments.mask[crop]
    assert torch.allclose(window[both_covered], full[crop][both_covered], atol=1e-4)


def test_vertex_colours_are_lambert_shaded_and_background_is_zero():
    vertices, faces, _, _ = square()
    colours = torch.tensor([[1.0, 0.5, 0.0]]).expand(4, -1)
    # Light travelling along +z (from the camera): the square faces it, full diffuse.
    image, fragments = render_vertex_colours(vertices, faces, colours, INTRINSICS, SIZE, SIZE,
                                             light_dir=(0.0, 0.0, 1.0), ambient=0.3)
    assert torch.allclose(image[0][fragments.mask[0]], torch.tensor([1.0, 0.5, 0.0]), atol=1e-5)
    # Light grazing the square: the ambient share only.
    image, fragments = render_vertex_colours(vertices, faces, colours, INTRINSICS, SIZE, SIZE,
                                             light_dir=(1.0, 0.0, 0.0), ambient=0.3)
    assert torch.allclose(image[0][fragments.mask[0]], torch.tensor([0.3, 0.15, 0.0]), atol=1e-5)
    assert (image[0][~fragments.mask[0]] == 0).all()
