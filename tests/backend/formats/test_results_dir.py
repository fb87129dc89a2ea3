"""The results directory: written with the core's writer, read back, and every refusal names
the file and the field (DESIGN.md "Results directory")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend.formats import protocol
from backend.formats.errors import BadInput
from backend.formats.head_file import HeadAsset
from backend.formats.results_dir import (
    MESH_NPZ,
    RESULT_JSON,
    RESULTS_DIRECTORY,
    TRACKING_KEYS,
    TRACKING_NPZ,
    TopologyMismatch,
    TrackingArrays,
    check_topology,
    frame_label,
    read_results,
    write_arrays,
    write_summary,
)
from conftest import rewrite_npz, square_head_fields

FRAMES = 3
SOURCE = {"path": "/clips/actor.mp4", "fps": 25.0, "width": 64, "height": 48,
          "frame_range": [10, 12], "frame_count": 40}


def square_head() -> HeadAsset:
    """Two triangles, four vertices, one blendshape."""
    return HeadAsset(**square_head_fields())


def tracking_arrays(head: HeadAsset) -> TrackingArrays:
    rng = np.random.default_rng(0)
    pose = np.tile(np.eye(4, dtype=np.float32), (FRAMES, 1, 1))
    pose[:, 2, 3] = [0.5, 0.6, 0.7]
    weights = rng.uniform(0, 1, (FRAMES, 1)).astype(np.float32)
    return TrackingArrays(
        frames=np.arange(10, 10 + FRAMES), vertices=head.posed_vertices(weights),
        head_pose=pose, intrinsics=np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]]),
        confidence=np.array([1.0, 0.0, 0.8]), landmarks_2d=rng.uniform(0, 48, (FRAMES, 68, 2)),
        landmarks_conf=rng.uniform(0, 1, (FRAMES, 68)), landmarks_fit=rng.uniform(0, 48, (FRAMES, 68, 2)),
        optional={"weights": weights, "weight_names": np.array(head.blendshape_names)})


def write_results(directory: Path, head: HeadAsset | None = None) -> Path:
    """A complete results directory as `track` writes it (arrays, then result.json last)."""
    head = head or square_head()
    directory.mkdir(parents=True)
    write_arrays(directory, tracking_arrays(head), head)
    write_summary(directory, {"tracker": "landmark-fit", "source": SOURCE, "model": "test-square"},
                  head)
    return directory


def replace_tracking(directory: Path, **changes: np.ndarray | None) -> None:
    """Rewrite tracking.npz with some arrays replaced (None drops one)."""
    rewrite_npz(directory / TRACKING_NPZ, **changes)


def edit_document(directory: Path, **changes: object) -> None:
    path = directory / RESULT_JSON
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


def test_write_then_read_round_trip(tmp_path):
    head = square_head()
    written = tracking_arrays(head)
    results = read_results(write_results(tmp_path / "out", head))
    for key in TRACKING_KEYS:
        np.testing.assert_allclose(results.tracking[key], getattr(written, key), rtol=1e-6, err_msg=key)
    assert results.frames.dtype == np.int64 and results.vertices.dtype == np.float32
    np.testing.assert_allclose(results.tracking["weights"], written.optional["weights"])
    assert results.tracking["weight_names"].tolist() == ["jawOpen"]
    assert results.document["schema"] == protocol.SCHEMA_VERSION
    assert results.topology_hash == head.topology_hash == str(results.mesh["topology_hash"])
    assert (results.width, results.height, results.footage) == (64, 48, "/clips/actor.mp4")
    np.testing.assert_array_equal(results.mesh["faces"], head.faces)
    assert results.mesh["faces"].dtype == np.int32
    np.testing.assert_array_equal(results.mesh["landmark_vertex"], head.landmark_vertex)
    check_topology(results, "the square head", head.num_vertices, head.topology_hash)


def test_frame_label_is_the_source_frame_index():
    assert frame_label(7) == "000007"
    assert frame_label(123456) == "123456"


@pytest.mark.parametrize("key", ["vertices", "landmarks_fit", "weights"])
def test_the_writer_refuses_non_finite_arrays(key, tmp_path):
    head = square_head()
    tracking = tracking_arrays(head)
    if key == "weights":
        tracking.optional["weights"][1, 0] = np.nan
    else:
        getattr(tracking, key)[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=f"'{key}' contains NaN"):
        write_arrays(tmp_path, tracking, head)


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(BadInput, match=r"missing do not exist; pass a directory written by"):
        read_results(tmp_path / "missing")


def test_a_directory_without_result_json_is_refused(tmp_path):
    out = write_results(tmp_path / "out")
    (out / RESULT_JSON).unlink()
    with pytest.raises(BadInput, match=r"not a FaceAdapt results directory \(result\.json missing\)"):
        read_results(out)


def test_unreadable_result_json_is_refused(tmp_path):
    out = write_results(tmp_path / "out")
    (out / RESULT_JSON).write_text("{not json")
    with pytest.raises(BadInput, match=r"result\.json cannot be read as JSON"):
        read_results(out)


@pytest.mark.parametrize("schema", [protocol.SCHEMA_VERSION + 1, None, "1"])
def test_schema_mismatch_is_refused(tmp_path, schema):
    out = write_results(tmp_path / "out")
    edit_document(out, schema=schema)
    with pytest.raises(BadInput, match=rf"schema {schema}, this FaceAdapt reads schema 1; re-track"):
        read_results(out)


@pytest.mark.parametrize("name", [TRACKING_NPZ, MESH_NPZ])
def test_missing_npz_is_named(tmp_path, name):
    out = write_results(tmp_path / "out")
    (out / name).unlink()
    with pytest.raises(BadInput, match=rf"{name} does not exist; re-track"):
        read_results(out)


@pytest.mark.parametrize("key", TRACKING_KEYS)
def test_missing_tracking_array_is_named(tmp_path, key):
    out = write_results(tmp_path / "out")
    replace_tracking(out, **{key: None})
    with pytest.raises(BadInput, match=rf"tracking\.npz lacks field\(s\) {key}; re-track"):
        read_results(out)


@pytest.mark.parametrize("key", [k for k in TRACKING_KEYS if k != "frames"] + ["weights"])
def test_short_tracking_array_is_named(tmp_path, key):
    out = write_results(tmp_path / "out")
    with np.load(out / TRACKING_NPZ) as data:
        value = data[key]
    short = value[:, :2] if key == "intrinsics" else value[:-1]
    replace_tracking(out, **{key: short})
    with pytest.raises(BadInput, match=rf"tracking\.npz: field '{key}' must be"):
        read_results(out)


@pytest.mark.parametrize("key", [k for k in TRACKING_KEYS if k != "frames"] + ["weights", "latent"])
def test_non_finite_tracking_array_is_named(tmp_path, key):
    out = write_results(tmp_path / "out")
    if key == "latent":
        replace_tracking(out, latent=np.zeros((FRAMES, 8), np.float32))
        read_results(out)  # a finite latent (F, Z) is read
    with np.load(out / TRACKING_NPZ) as data:
        value = data[key].copy()
    value.reshape(-1)[-1] = np.nan
    replace_tracking(out, **{key: value})
    with pytest.raises(BadInput, match=rf"tracking\.npz: field '{key}' contains NaN or inf"):
        read_results(out)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"weight_names": np.array(["jawOpen", "eyeBlinkLeft"])},
     "field 'weight_names' names 2 channels for 1 weights"),
    ({"weight_names": np.array([["jawOpen"]])}, r"field 'weight_names' must be \(K,\)"),
    ({"weight_names": None}, "field 'weights' comes without 'weight_names'"),
    ({"weights": None}, "field 'weight_names' comes without 'weights'"),
])
def test_weight_names_must_name_every_weight(tmp_path, changes, problem):
    out = write_results(tmp_path / "out")
    replace_tracking(out, **changes)
    with pytest.raises(BadInput, match=rf"tracking\.npz: {problem}"):
        read_results(out)


@pytest.mark.parametrize(("frames", "problem"), [
    (np.array([], np.int64), "holds no frames"),
    (np.array([10.0, 11.0, np.nan]), "field 'frames' must be integer source frame indices"),
    (np.array([-1, 0, 1]), "field 'frames' must be integer source frame indices"),
    (np.array([10, 12, 11]), "field 'frames' must be integer source frame indices"),
    (np.array([10, 11, 11]), "field 'frames' must be integer source frame indices"),
])
def test_frames_must_be_increasing_source_indices(tmp_path, frames, problem):
    out = write_results(tmp_path / "out")
    replace_tracking(out, frames=frames)
    with pytest.raises(BadInput, match=problem):
        read_results(out)


def test_result_json_and_mesh_npz_disagreeing_on_topology_is_refused(tmp_path):
    out = write_results(tmp_path / "out")
    edit_document(out, topology_hash="0123456789abcdef")
    with pytest.raises(BadInput, match=r"mesh\.npz \(topology [0-9a-f]{16}\) and result\.json "
                                       r"\(topology 0123456789abcdef\) disagree; re-track"):
        read_results(out)


@pytest.mark.parametrize("field", ["width", "height", "path"])
def test_a_missing_source_field_is_named_when_used(tmp_path, field):
    out = write_results(tmp_path / "out")
    edit_document(out, source={k: v for k, v in SOURCE.items() if k != field})
    results = read_results(out)
    with pytest.raises(BadInput, match=rf"result\.json: field 'source\.{field}' is missing"):
        {"width": lambda: results.width, "height": lambda: results.height,
         "path": lambda: results.footage}[field]()


def test_check_topology_mismatch_says_what_to_do(tmp_path):
    head = square_head()
    results = read_results(write_results(tmp_path / "out", head))
    with pytest.raises(TopologyMismatch) as refused:
        check_topology(results, "'Head.001'", 5, "fedcba9876543210")
    message = str(refused.value)
    assert "tracked on a head with 4 vertices" in message
    assert f"(topology {head.topology_hash})" in message
    assert "'Head.001' has 5 vertices (topology fedcba9876543210)" in message
    assert "Use the head the clip was tracked with (result.json model: test-square)" in message
    assert "or re-track with this head" in message
    assert isinstance(refused.value, BadInput)  # callers that catch BadInput refuse it too
    # Same vertex count, other layout: still refused.
    with pytest.raises(TopologyMismatch):
        check_topology(results, "'Head.001'", 4, "fedcba9876543210")


@pytest.mark.parametrize("name", [TRACKING_NPZ, MESH_NPZ])
def test_truncated_npz_is_refused_naming_the_file(tmp_path, name):
    out = write_results(tmp_path / "out")
    data = (out / name).read_bytes()
    (out / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match=rf"{name} cannot be read as \.npz .*; re-track"):
        read_results(out)


def _poses_with_frame_1(matrix: np.ndarray) -> np.ndarray:
    pose = np.tile(np.eye(4, dtype=np.float32), (FRAMES, 1, 1))
    pose[1] = matrix
    return pose


@pytest.mark.parametrize("broken", ["singular", "scaled", "mirrored", "sheared", "bottom row"])
def test_non_rigid_head_pose_is_refused(tmp_path, broken):
    matrix = np.eye(4, dtype=np.float32)
    if broken == "singular":
        matrix[:3, :3] = 0.0
    elif broken == "scaled":
        matrix[:3, :3] *= 1.1
    elif broken == "mirrored":
        matrix[0, 0] = -1.0
    elif broken == "sheared":
        matrix[0, 1] = 0.2
    else:
        matrix[3] = [0.0, 0.0, 1.0, 1.0]
    out = write_results(tmp_path / "out")
    replace_tracking(out, head_pose=_poses_with_frame_1(matrix))
    with pytest.raises(BadInput, match=r"tracking\.npz: field 'head_pose' row 1 is not a rigid"):
        read_results(out)


def test_a_rigid_head_pose_of_float32_rounding_is_read(tmp_path):
    angle = 0.7
    matrix = np.eye(4)
    matrix[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    matrix[:3, 3] = [0.1, -0.2, 0.6]
    out = write_results(tmp_path / "out")
    replace_tracking(out, head_pose=_poses_with_frame_1(matrix.astype(np.float32)))
    read_results(out)


@pytest.mark.parametrize(("vertices", "problem"), [
    (lambda v: v[..., :2], r"tracking\.npz: field 'vertices' must be \(3, None, 3\)"),
    (lambda v: v[0], r"tracking\.npz: field 'vertices' must be \(3, None, 3\)"),
    (lambda v: v[:, :3], r"mesh\.npz: field 'faces' indexes beyond the 3 rows"),
])
def test_wrong_vertex_shapes_are_refused(tmp_path, vertices, problem):
    out = write_results(tmp_path / "out")
    with np.load(out / TRACKING_NPZ) as data:
        value = data["vertices"]
    replace_tracking(out, vertices=vertices(value))
    with pytest.raises(BadInput, match=problem):
        read_results(out)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"faces": np.array([[0, 1, 2], [0, 2, 4]])}, r"field 'faces' indexes beyond the 4 rows"),
    ({"faces": np.array([[0.0, 1.0, 2.0]])}, r"field 'faces' must be integer \(None, 3\)"),
    ({"uv_faces": np.array([[0, 1, 7]])}, r"field 'uv_faces' indexes beyond the 4 rows"),
    ({"uv": np.zeros((4, 3), np.float32)}, r"field 'uv' must be \(U, 2\)"),
    ({"landmark_vertex": np.arange(67)}, r"field 'landmark_vertex' must be integer \(68,\)"),
])
def test_inconsistent_mesh_npz_is_refused(tmp_path, changes, problem):
    out = write_results(tmp_path / "out")
    rewrite_npz(out / MESH_NPZ, **changes)
    with pytest.raises(BadInput, match=rf"mesh\.npz: {problem}"):
        read_results(out)


@pytest.mark.parametrize("key", ["vertices", "head_pose", "confidence"])
def test_arrays_of_different_lengths_are_refused(tmp_path, key):
    out = write_results(tmp_path / "out")
    with np.load(out / TRACKING_NPZ) as data:
        longer = np.concatenate([data[key], data[key][-1:]])
    replace_tracking(out, **{key: longer})
    with pytest.raises(BadInput, match=rf"tracking\.npz: field '{key}' must be .* for 3 frames"):
        read_results(out)


@pytest.mark.parametrize("source", [None, "/clips/actor.mp4", [64, 48]])
def test_a_source_that_is_not_an_object_is_refused(tmp_path, source):
    out = write_results(tmp_path / "out")
    edit_document(out, source=source)
    with pytest.raises(BadInput, match=r"result\.json: field 'source' must be an object"):
        read_results(out)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_result_json_never_holds_infinity_or_nan(tmp_path, value):
    """The report: `--fps inf` wrote `Infinity` into result.json (not JSON; strict readers
    refuse the file). The writer refuses instead of writing it."""
    head = square_head()
    with pytest.raises(ValueError, match="JSON"):
        write_summary(tmp_path, {"source": {**SOURCE, "fps": value}}, head)
    assert not (tmp_path / "result.json").exists()


def test_results_directory_kind_recognises_what_track_writes(tmp_path):
    """--overwrite replaces a results directory as written, and not one with other files."""
    results = write_results(tmp_path / "r")
    (results / "textures").mkdir()
    (results / "cache.pc2").write_bytes(b"")
    assert RESULTS_DIRECTORY.foreign_to(results) is None
    (results / "shot_notes.txt").write_text("mine")
    assert "shot_notes.txt" in RESULTS_DIRECTORY.foreign_to(results)
