"""The head file (head.npz): round trip, and every refusal names the file and the field."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from backend.formats.errors import BadInput
from backend.formats.head_file import (
    HEAD_REQUIRED_KEYS,
    HeadAsset,
    load_head,
    save_head,
    topology_hash,
)
from conftest import rewrite_npz


def tetrahedron_head() -> HeadAsset:
    """A 4-vertex head with two blendshapes: small enough to reason about every field."""
    vertices = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1]], np.float32)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int64)
    blendshapes = np.zeros((2, 4, 3), np.float32)
    blendshapes[0, 3, 2] = 0.01  # jawOpen lifts the apex
    blendshapes[1, 1, 0] = -0.02
    return HeadAsset(
        vertices=vertices,
        faces=faces,
        uv=np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]], np.float32),
        uv_faces=np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [4, 2, 3]], np.int64),
        blendshapes=blendshapes,
        blendshape_names=["jawOpen", "eyeBlinkLeft"],
        landmark_vertex=np.arange(68, dtype=np.int64) % 4,
        landmark_mask=np.arange(68) % 3 != 0,
        face_region=np.array([True, True, False, True]),
        albedo=np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3),
        neck_pivot=np.array([0, 0.01, -0.02], np.float32),
    )


def head_arrays(head: HeadAsset) -> dict[str, np.ndarray]:
    """The arrays a valid head.npz holds (as save_head writes them)."""
    return {
        "vertices": head.vertices, "faces": head.faces.astype(np.int32), "uv": head.uv,
        "uv_faces": head.uv_faces.astype(np.int32), "blendshapes": head.blendshapes,
        "blendshape_names": np.array(head.blendshape_names), "landmark_vertex":
        head.landmark_vertex.astype(np.int32), "landmark_mask": head.landmark_mask,
        "face_region": head.face_region, "albedo": head.albedo, "neck_pivot": head.neck_pivot,
    }


def write_head_npz(path: Path, **changes: np.ndarray | None) -> Path:
    """A head.npz with some arrays replaced (None drops the array)."""
    np.savez(path, **head_arrays(tetrahedron_head()))
    return rewrite_npz(path, **changes)


def test_round_trip_keeps_every_field(tmp_path):
    head = tetrahedron_head()
    path = tmp_path / "head.npz"
    save_head(head, path)
    loaded = load_head(path)
    for name in ("vertices", "faces", "uv", "uv_faces", "blendshapes", "landmark_vertex",
                 "landmark_mask", "face_region", "albedo", "neck_pivot"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(head, name), err_msg=name)
    assert loaded.blendshape_names == head.blendshape_names
    assert loaded.topology_hash == head.topology_hash
    assert loaded.albedo is not None and loaded.albedo.dtype == np.uint8
    # On disk: int32 indices and the schema's keys, nothing pickled.
    with np.load(path, allow_pickle=False) as data:
        assert data["faces"].dtype == np.int32 and data["uv_faces"].dtype == np.int32
        assert set(data.files) == {*HEAD_REQUIRED_KEYS, "albedo", "neck_pivot"}
    assert [p.name for p in tmp_path.iterdir()] == ["head.npz"]  # no temp file left


def test_optional_fields_default(tmp_path):
    path = write_head_npz(tmp_path / "head.npz", albedo=None, neck_pivot=None)
    loaded = load_head(path)
    assert loaded.albedo is None
    np.testing.assert_array_equal(loaded.neck_pivot, np.zeros(3))


def test_posed_vertices_add_weighted_deltas():
    head = tetrahedron_head()
    posed = head.posed_vertices(np.array([[0.0, 0.0], [1.0, 0.5]], np.float32))
    np.testing.assert_array_equal(posed[0], head.vertices)
    np.testing.assert_allclose(posed[1, 3], [0, 0, 0.11], atol=1e-7)
    np.testing.assert_allclose(posed[1, 1], [0.09, 0, 0], atol=1e-7)


def test_topology_hash_tracks_faces_and_uv_layout():
    head = tetrahedron_head()
    base = head.topology_hash
    assert len(base) == 16 and base == tetrahedron_head().topology_hash
    flipped = head.faces[:, ::-1]
    assert topology_hash(head.num_vertices, flipped, head.uv[head.uv_faces[:, ::-1]]) != base
    moved_uv = head.uv.copy()
    moved_uv[4] = [0.25, 0.75]
    assert topology_hash(head.num_vertices, head.faces, moved_uv[head.uv_faces]) != base
    assert topology_hash(5, head.faces, head.uv[head.uv_faces]) != base
    # Vertex positions and blendshapes are not topology.
    assert topology_hash(4, head.faces, head.uv[head.uv_faces]) == base


@pytest.mark.parametrize("field", HEAD_REQUIRED_KEYS)
def test_missing_field_is_named(tmp_path, field):
    path = write_head_npz(tmp_path / "head.npz", **{field: None})
    with pytest.raises(BadInput, match=rf"head\.npz lacks field\(s\) {field}\b"):
        load_head(path)


WRONG_SHAPES = {
    "vertices": np.zeros((4, 2), np.float32),
    "faces": np.zeros((4, 4), np.int32),
    "uv": np.zeros((5, 3), np.float32),
    "uv_faces": np.zeros((3, 3), np.int32),
    "blendshapes": np.zeros((2, 3, 3), np.float32),
    "blendshape_names": np.array(["jawOpen"]),
    "landmark_vertex": np.zeros(67, np.int32),
    "landmark_mask": np.ones(69, bool),
    "face_region": np.ones(5, bool),
    "albedo": np.zeros((2, 3), np.uint8),
    "neck_pivot": np.zeros(2, np.float32),
}


@pytest.mark.parametrize("field", sorted(WRONG_SHAPES))
def test_wrong_shape_is_named(tmp_path, field):
    path = write_head_npz(tmp_path / "head.npz", **{field: WRONG_SHAPES[field]})
    with pytest.raises(BadInput, match=rf"head\.npz: field '{field}'"):
        load_head(path)


def test_no_blendshapes_is_refused(tmp_path):
    path = write_head_npz(tmp_path / "head.npz", blendshapes=np.zeros((0, 4, 3), np.float32),
                          blendshape_names=np.array([], dtype=str))
    with pytest.raises(BadInput, match="field 'blendshapes' is empty"):
        load_head(path)


OUT_OF_RANGE = {
    "faces": np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 4]], np.int32),
    "uv_faces": np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [5, 2, 3]], np.int32),
    "landmark_vertex": np.full(68, 4, np.int32),
}


@pytest.mark.parametrize("field", sorted(OUT_OF_RANGE))
@pytest.mark.parametrize("sign", [1, -1])
def test_out_of_range_indices_are_named(tmp_path, field, sign):
    indices = OUT_OF_RANGE[field]
    if sign < 0:  # a negative index is as wrong as one past the end
        indices = np.where(indices == indices.max(), -1, indices).astype(np.int32)
    path = write_head_npz(tmp_path / "head.npz", **{field: indices})
    with pytest.raises(BadInput, match=rf"field '{field}' indexes .* outside 0\.\."):
        load_head(path)


@pytest.mark.parametrize("field", ["vertices", "uv", "blendshapes", "neck_pivot"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_are_named(tmp_path, field, bad):
    values = head_arrays(tetrahedron_head())[field].copy()
    values.reshape(-1)[-1] = bad
    path = write_head_npz(tmp_path / "head.npz", **{field: values})
    with pytest.raises(BadInput, match=rf"field '{field}' contains NaN or inf"):
        load_head(path)


def test_save_refuses_an_invalid_head_and_writes_nothing(tmp_path):
    head = tetrahedron_head()
    head.faces = head.faces.copy()
    head.faces[0, 0] = 7
    with pytest.raises(BadInput, match="field 'faces'"):
        save_head(head, tmp_path / "head.npz")
    assert list(tmp_path.iterdir()) == []


class _WritesAMarker:
    """Unpickling this runs `open(marker, 'w')`: proof that a loader executed file content."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickled_object_array_is_refused_not_executed(tmp_path):
    marker = tmp_path / "executed"
    payload = np.array([_WritesAMarker(marker), "eyeBlinkLeft"], dtype=object)
    path = write_head_npz(tmp_path / "head.npz", blendshape_names=payload)
    with pytest.raises(BadInput, match=r"head file .*head\.npz cannot be read"):
        load_head(path)
    assert not marker.exists()
    # The payload is live: a loader that unpickles would have run it.
    with np.load(path, allow_pickle=True) as data:
        handle = data["blendshape_names"][0]
    handle.close()
    assert marker.exists()


def test_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "head.npz"
    path.write_text("not a zip")
    with pytest.raises(BadInput, match=r"cannot be read as \.npz"):
        load_head(path)
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(BadInput, match=r"lacks field\(s\) vertices"):
        load_head(tmp_path / "empty.npz")
