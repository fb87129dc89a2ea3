"""Rasterizer candidates measured against the Warp kernel by `bench render` (docs/renderer.md).

Only Warp is used by FaceAdapt; these stay for the side-by-side comparison:
- `torch`: plain torch, triangles bucketed by screen size, each testing a square of candidate
  pixels, z-buffer by `scatter_reduce` (the first implementation);
- `moderngl`: OpenGL through EGL (llvmpipe software GL on machines without a GPU), when the
  optional `moderngl` package is installed (`pip install moderngl==5.13.0`).
Each returns (triangle (B, H, W) int64 with -1 where empty, depth (B, H, W) float32).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from ..render import rasterize as rasterize_module
from ..render.warp_coverage import cover as warp_cover

Coverage = Callable[[torch.Tensor, torch.Tensor, int, int, float, bool],
                    tuple[torch.Tensor, torch.Tensor]]

# Triangles are rasterized in groups of similar screen size; each group tests a square of
# candidate pixels per triangle, so memory is (triangles in group) x side^2.
_GROUP_SIDES = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
_MAX_CANDIDATES = 8_000_000


def torch_cover(screen: torch.Tensor, faces: torch.Tensor, height: int, width: int, near: float,
                cull_backfaces: bool) -> tuple[torch.Tensor, torch.Tensor]:
    batch = screen.shape[0]
    triangle = torch.full((batch, height, width), -1, dtype=torch.int64, device=screen.device)
    depth = torch.full((batch, height, width), float("inf"), dtype=torch.float32, device=screen.device)
    faces = faces.to(device=screen.device, dtype=torch.int64)
    with torch.no_grad():
        for b in range(batch):
            _rasterize_one(screen[b].float(), faces, height, width, near, cull_backfaces,
                           triangle[b], depth[b])
    return triangle, depth


def _rasterize_one(
    screen: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    near: float,
    cull_backfaces: bool,
    out_triangle: torch.Tensor,
    out_depth: torch.Tensor,
) -> None:
    tri = screen[faces]  # (T, 3, 3)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    valid = torch.isfinite(tri).all(dim=(1, 2)) & (z > near).all(dim=1) & (area.abs() > 1e-12)
    if cull_backfaces:
        valid &= area < 0
    x0 = torch.ceil(x.amin(1)).clamp(0, width)
    x1 = torch.floor(x.amax(1)).clamp(-1, width - 1)
    y0 = torch.ceil(y.amin(1)).clamp(0, height)
    y1 = torch.floor(y.amax(1)).clamp(-1, height - 1)
    valid &= (x1 >= x0) & (y1 >= y0)
    ids = torch.nonzero(valid).squeeze(1)
    if ids.numel() == 0:
        return
    side = torch.maximum(x1[ids] - x0[ids], y1[ids] - y0[ids]) + 1
    best_depth = out_depth.view(-1)
    best_tri = out_triangle.view(-1)
    lower = 0.0
    for group_side in _GROUP_SIDES:
        members = ids[(side > lower) & (side <= group_side)]
        lower = group_side
        chunk = max(1, _MAX_CANDIDATES // (group_side * group_side))
        for start in range(0, members.numel(), chunk):
            _cover(members[start:start + chunk], group_side, x, y, z, x0, y0, x1, y1, area,
                   width, best_depth, best_tri)


def _cover(
    ids: torch.Tensor, side: int, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
    x0: torch.Tensor, y0: torch.Tensor, x1: torch.Tensor, y1: torch.Tensor, area: torch.Tensor,
    width: int, best_depth: torch.Tensor, best_tri: torch.Tensor,
) -> None:
    """Depth-test the candidate pixels of triangles `ids` (bounding boxes at most side^2)."""
    offsets = torch.arange(side, device=x.device, dtype=torch.float32)
    px = (x0[ids, None, None] + offsets[None, None, :]).expand(-1, side, side)
    py = (y0[ids, None, None] + offsets[None, :, None]).expand(-1, side, side)
    inside_box = (px <= x1[ids, None, None]) & (py <= y1[ids, None, None])
    xs, ys = x[ids][:, :, None, None], y[ids][:, :, None, None]
    # Edge functions divided by the signed area: screen-space barycentrics.
    a = area[ids][:, None, None]
    w0 = ((xs[:, 1] - px) * (ys[:, 2] - py) - (xs[:, 2] - px) * (ys[:, 1] - py)) / a
    w1 = ((xs[:, 2] - px) * (ys[:, 0] - py) - (xs[:, 0] - px) * (ys[:, 2] - py)) / a
    w2 = 1.0 - w0 - w1
    inside = inside_box & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    zs = z[ids][:, :, None, None]
    # Perspective-correct depth: 1/z is linear in screen space.
    inv_z = w0 / zs[:, 0] + w1 / zs[:, 1] + w2 / zs[:, 2]
    sel = torch.nonzero(inside, as_tuple=True)
    if sel[0].numel() == 0:
        return
    pixel = (py[sel] * width + px[sel]).long()
    frag_depth = 1.0 / inv_z[sel]
    frag_tri = ids[sel[0]]
    depth_before = best_depth[pixel]
    best_depth.scatter_reduce_(0, pixel, frag_depth, reduce="amin")
    depth_after = best_depth[pixel]
    # A pixel won by a nearer fragment forgets the triangle of an earlier group.
    best_tri[pixel[depth_after < depth_before]] = -1
    # Ties (shared edges at equal depth): the larger triangle id wins, deterministically.
    candidate = torch.where(frag_depth <= depth_after, frag_tri, torch.full_like(frag_tri, -1))
    best_tri.scatter_reduce_(0, pixel, candidate, reduce="amax")


class ModernGLCover:
    """Triangle ids and depth from an OpenGL render (EGL) read back into torch."""

    _VERTEX = """
        #version 330
        in vec3 in_screen;
        uniform vec2 size;
        uniform float near;
        uniform float far;
        void main() {
            float z = in_screen.z;
            vec2 ndc = vec2((in_screen.x + 0.5) / size.x * 2.0 - 1.0,
                            1.0 - (in_screen.y + 0.5) / size.y * 2.0);
            float zndc = (far + near) / (far - near) - 2.0 * far * near / ((far - near) * z);
            gl_Position = vec4(ndc * z, zndc * z, z);
        }"""
    _FRAGMENT = """
        #version 330
        out int id;
        void main() { id = gl_PrimitiveID; }"""

    def __init__(self) -> None:
        import moderngl

        self._gl = moderngl
        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.program = self.ctx.program(vertex_shader=self._VERTEX, fragment_shader=self._FRAGMENT)
        self._size: tuple[int, int] | None = None

    def _framebuffer(self, height: int, width: int) -> None:
        if self._size != (height, width):
            self.colour = self.ctx.texture((width, height), 1, dtype="i4")
            self.depth = self.ctx.depth_renderbuffer((width, height))
            self.fbo = self.ctx.framebuffer(color_attachments=[self.colour],
                                            depth_attachment=self.depth)
            self._size = (height, width)

    def __call__(self, screen: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                 near: float, cull_backfaces: bool) -> tuple[torch.Tensor, torch.Tensor]:
        near, far = max(near, 1e-3), 100.0  # a float32 depth buffer needs a sane near/far ratio
        self._framebuffer(height, width)
        self.program["size"].value = (float(width), float(height))
        self.program["near"].value, self.program["far"].value = near, far
        indices = self.ctx.buffer(faces.to(torch.int32).cpu().numpy().tobytes())
        triangles, depths = [], []
        for b in range(screen.shape[0]):
            vbo = self.ctx.buffer(screen[b].detach().float().cpu().numpy().tobytes())
            vao = self.ctx.vertex_array(self.program, [(vbo, "3f", "in_screen")], indices)
            self.fbo.use()
            self.ctx.enable(self._gl.DEPTH_TEST)
            self.fbo.clear(depth=1.0)
            self.colour.write(np.full((height, width), -1, np.int32).tobytes())
            vao.render(self._gl.TRIANGLES)
            ids = np.frombuffer(self.fbo.read(components=1, dtype="i4"), np.int32)
            d = np.frombuffer(self.fbo.read(components=1, attachment=-1, dtype="f4"), np.float32)
            ids, d = ids.reshape(height, width)[::-1], d.reshape(height, width)[::-1]
            zndc = 2.0 * d - 1.0
            covered = ids >= 0
            metric = np.full(ids.shape, np.inf, np.float32)
            metric[covered] = 2.0 * far * near / ((far + near) - zndc[covered] * (far - near))
            triangles.append(torch.from_numpy(ids.astype(np.int64)))
            depths.append(torch.from_numpy(metric))
            vao.release()
            vbo.release()
        indices.release()
        return torch.stack(triangles).to(screen.device), torch.stack(depths).to(screen.device)


def candidates() -> dict[str, Coverage | str]:
    """Name -> coverage function, or the reason it is unavailable."""
    found: dict[str, Coverage | str] = {"warp": warp_cover, "torch": torch_cover}
    try:
        found["moderngl"] = ModernGLCover()
    except Exception as exc:
        found["moderngl"] = f"unavailable: {type(exc).__name__}: {exc}"
    return found


@contextmanager
def using_coverage(coverage: Coverage) -> Iterator[None]:
    """Make `backend.render.rasterize.rasterize` (and so unwrap) use another candidate."""
    original = rasterize_module.cover
    rasterize_module.cover = coverage
    try:
        yield
    finally:
        rasterize_module.cover = original
