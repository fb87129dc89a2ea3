"""The head file (DESIGN.md head-file schema, `head.npz`): the head asset, its validation,
loading (never unpickling) and saving, and the topology hash that ties results and textures
to one mesh layout. The backend, the add-on and the Blender-side programs all read heads here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .errors import BadInput
from .npz_arrays import read_npz
from .protocol import NUM_LANDMARKS

HEAD_REQUIRED_KEYS = (
    "vertices",  # (V, 3) float32, head space, metres
    "faces",  # (T, 3) int32
    "uv",  # (U, 2) float32, [0, 1], origin bottom-left (Blender)
    "uv_faces",  # (T, 3) int32
    "blendshapes",  # (K, V, 3) float32 deltas, metres
    "blendshape_names",  # (K,) str, ARKit spelling
    "landmark_vertex",  # (68,) int32, iBUG-68 order
    "landmark_mask",  # (68,) bool, False where the head cannot place the point
    "face_region",  # (V,) bool
)
HEAD_OPTIONAL_KEYS = ("albedo", "neck_pivot")  # (H, W, 3) uint8; (3,) float32


@dataclass
class HeadAsset:
    """A rigged head in head space (metres, +Z up, face toward -Y, origin at the neck pivot).

    vertices (V, 3) f32; faces (T, 3) int64 in memory (int32 on disk);
    uv (U, 2) f32 in [0, 1] (origin bottom-left);
    uv_faces (T, 3) like faces; blendshapes (K, V, 3) f32 deltas in metres, named in ARKit spelling;
    landmark_vertex (68,) i32 iBUG-68 order with landmark_mask (68,) bool; face_region (V,) bool;
    albedo (H, W, 3) u8 or None (row 0 is the top of the texture, v = 1); neck_pivot (3,) f32.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    uv_faces: np.ndarray
    blendshapes: np.ndarray
    blendshape_names: list[str]
    landmark_vertex: np.ndarray
    landmark_mask: np.ndarray
    face_region: np.ndarray
    albedo: np.ndarray | None = None
    neck_pivot: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def face_triangles(self) -> np.ndarray:
        """(T,) bool: the triangles whose three vertices are all in the face region."""
        return self.face_region[self.faces].all(1)

    @property
    def topology_hash(self) -> str:
        return topology_hash(self.num_vertices, self.faces, self.uv[self.uv_faces])

    def posed_vertices(self, weights: np.ndarray) -> np.ndarray:
        """Vertices (..., V, 3) for blendshape weights (..., K)."""
        return self.vertices + np.tensordot(weights, self.blendshapes, axes=([-1], [0]))

    def validate(self, source: str) -> None:
        """Raise BadInput naming `source` and the field when the asset breaks the schema."""
        v = self.num_vertices

        def fail(field_name: str, problem: str) -> None:
            raise BadInput(f"head file {source}: field '{field_name}' {problem}; "
                           "re-export it with `python -m backend export-head`")

        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or v == 0:
            fail("vertices", f"must be (V, 3), got {self.vertices.shape}")
        if not np.isfinite(self.vertices).all():
            fail("vertices", "contains NaN or inf")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            fail("faces", f"must be (T, 3), got {self.faces.shape}")
        if self.faces.min() < 0 or self.faces.max() >= v:
            fail("faces", f"indexes vertices outside 0..{v - 1}")
        if self.uv.ndim != 2 or self.uv.shape[1] != 2 or len(self.uv) == 0:
            fail("uv", f"must be (U, 2), got {self.uv.shape}")
        if not np.isfinite(self.uv).all():
            fail("uv", "contains NaN or inf")
        if self.uv_faces.shape != self.faces.shape:
            fail("uv_faces", f"must match faces {self.faces.shape}, got {self.uv_faces.shape}")
        if self.uv_faces.min() < 0 or self.uv_faces.max() >= len(self.uv):
            fail("uv_faces", f"indexes uv outside 0..{len(self.uv) - 1}")
        if self.blendshapes.ndim != 3 or self.blendshapes.shape[1:] != (v, 3):
            fail("blendshapes", f"must be (K, {v}, 3), got {self.blendshapes.shape}")
        if len(self.blendshapes) == 0:
            fail("blendshapes", "is empty: a head needs blendshapes to track expressions")
        if not np.isfinite(self.blendshapes).all():
            fail("blendshapes", "contains NaN or inf")
        if len(self.blendshape_names) != len(self.blendshapes):
            fail("blendshape_names", f"has {len(self.blendshape_names)} names for "
                 f"{len(self.blendshapes)} blendshapes")
        if self.landmark_vertex.shape != (NUM_LANDMARKS,):
            fail("landmark_vertex", f"must be (68,), got {self.landmark_vertex.shape}")
        if self.landmark_vertex.min() < 0 or self.landmark_vertex.max() >= v:
            fail("landmark_vertex", f"indexes vertices outside 0..{v - 1}")
        if self.landmark_mask.shape != (NUM_LANDMARKS,):
            fail("landmark_mask", f"must be (68,), got {self.landmark_mask.shape}")
        if self.face_region.shape != (v,):
            fail("face_region", f"must be ({v},), got {self.face_region.shape}")
        if self.albedo is not None and (self.albedo.ndim != 3 or self.albedo.shape[2] != 3
                                        or self.albedo.dtype != np.uint8):
            fail("albedo", f"must be (H, W, 3) uint8, got {self.albedo.shape} {self.albedo.dtype}")
        if np.shape(self.neck_pivot) != (3,):
            fail("neck_pivot", f"must be (3,), got {np.shape(self.neck_pivot)}")
        if not np.isfinite(self.neck_pivot).all():
            fail("neck_pivot", "contains NaN or inf")


def topology_hash(num_vertices: int, faces: np.ndarray, corner_uv: np.ndarray) -> str:
    """Identifies a head's topology and UV layout: the vertex count, the (T, 3) triangles as
    little-endian int32 and the UV of every triangle corner (T, 3, 2) as little-endian float32,
    as Blender stores UVs per face corner; 16 hex digits of SHA-256. Results carry it, so they
    and their textures are never applied to a head with another layout."""
    digest = hashlib.sha256()
    digest.update(str(int(num_vertices)).encode())
    digest.update(np.ascontiguousarray(faces, dtype="<i4").tobytes())
    digest.update(np.ascontiguousarray(corner_uv, dtype="<f4").tobytes())
    return digest.hexdigest()[:16]


def save_head(head: HeadAsset, path: Path) -> None:
    """Write `head` as head.npz (atomically)."""
    head.validate(str(path))
    arrays = {
        "vertices": head.vertices.astype(np.float32),
        "faces": head.faces.astype(np.int32),
        "uv": head.uv.astype(np.float32),
        "uv_faces": head.uv_faces.astype(np.int32),
        "blendshapes": head.blendshapes.astype(np.float32),
        "blendshape_names": np.array(head.blendshape_names, dtype=str),
        "landmark_vertex": head.landmark_vertex.astype(np.int32),
        "landmark_mask": head.landmark_mask.astype(bool),
        "face_region": head.face_region.astype(bool),
        "neck_pivot": np.asarray(head.neck_pivot, np.float32),
    }
    if head.albedo is not None:
        arrays["albedo"] = head.albedo.astype(np.uint8)
    with atomic_file(Path(path)) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def load_head(path: Path) -> HeadAsset:
    """Read and validate a head.npz; a missing, corrupt or incomplete file raises BadInput."""
    arrays = read_npz(Path(path), "head file", HEAD_REQUIRED_KEYS,
                      "export one with `python -m backend export-head --out head.npz`")
    head = HeadAsset(
        vertices=arrays["vertices"].astype(np.float32),
        faces=arrays["faces"].astype(np.int64),
        uv=arrays["uv"].astype(np.float32),
        uv_faces=arrays["uv_faces"].astype(np.int64),
        blendshapes=arrays["blendshapes"].astype(np.float32),
        blendshape_names=[str(n) for n in arrays["blendshape_names"]],
        landmark_vertex=arrays["landmark_vertex"].astype(np.int64),
        landmark_mask=arrays["landmark_mask"].astype(bool),
        face_region=arrays["face_region"].astype(bool),
        albedo=arrays.get("albedo"),
        neck_pivot=arrays.get("neck_pivot", np.zeros(3, np.float32)).astype(np.float32),
    )
    head.validate(str(path))
    return head
