"""MediaPipe's mirror table and the mirror-averaged detection: the table pairs the mesh's two
sides and is what the derivation recovers, an antisymmetric detector error cancels while an
asymmetric expression stays, and the detector's points for a mirrored photo are its points for
the photo, mirrored."""

import numpy as np
import pytest

from backend.landmarks.mediapipe_mirror import (
    MESH_POINTS,
    bring_back,
    derive_mirror_table,
    load_mirror_table,
    mirror_average,
)

TABLE = load_mirror_table()


def test_the_table_pairs_the_two_sides_of_the_mesh():
    from mediapipe.python.solutions import face_mesh_connections

    assert (TABLE[TABLE] == np.arange(MESH_POINTS)).all()
    # The outer eye corners, the mouth corners, the irises' centres; the nose tip and chin on the axis.
    assert (TABLE[33], TABLE[61], TABLE[468], TABLE[1], TABLE[152]) == (263, 291, 473, 1, 152)
    edges = {tuple(sorted(edge)) for edge in face_mesh_connections.FACEMESH_TESSELATION}
    kept = sum(tuple(sorted((TABLE[a], TABLE[b]))) in edges for a, b in edges)
    # The tessellation itself has 6 asymmetric diagonals (a quad split one way on each side).
    assert kept >= len(edges) - 6


def _face(rng: np.random.Generator) -> np.ndarray:
    """(478, 2) points about x = 0 that the table mirrors onto themselves."""
    points = rng.uniform(-40, 40, (MESH_POINTS, 2))
    on_axis = TABLE == np.arange(MESH_POINTS)
    points[on_axis, 0] = 0
    points[33] = [-30, -10]  # the eye corners that scale the same-face check: 60 px apart
    first = np.flatnonzero(TABLE > np.arange(MESH_POINTS))
    points[TABLE[first]] = points[first] * [-1, 1]
    return points


def _mirror_pass(face_in_image: np.ndarray, width: int) -> np.ndarray:
    """What a detector that sees the face exactly finds on the mirrored image: each point of
    the mirrored face (the mesh's order) at its reflected place."""
    found = face_in_image[TABLE].copy()
    found[:, 0] = (width - 1) - found[:, 0]
    return found


def test_an_antisymmetric_error_cancels_and_an_asymmetric_expression_stays():
    width, bias = 320, np.array([2.0, 0.0])  # the detector puts every point 2 px to the image's right
    face = _face(np.random.default_rng(1)) + np.array([120, 150])
    face[61, 1] -= 5  # a smirk: one mouth corner raised
    direct = face + bias
    mirror_pass = _mirror_pass(face, width) + bias
    np.testing.assert_allclose(bring_back(_mirror_pass(face, width), width, TABLE), face, atol=1e-9)
    np.testing.assert_allclose(mirror_average(direct, mirror_pass, width, TABLE), face, atol=1e-4)


def test_a_mirror_pass_without_the_face_or_on_another_face_is_left_out():
    width = 320
    face = _face(np.random.default_rng(2)) + np.array([120, 150])
    np.testing.assert_array_equal(mirror_average(face, None, width, TABLE), face.astype(np.float32))
    elsewhere = _mirror_pass(face, width) + np.array([90, 0])  # another face, more than an eye distance away
    np.testing.assert_array_equal(mirror_average(face, elsewhere, width, TABLE), face.astype(np.float32))


def test_the_derivation_recovers_the_pairing_from_a_detector_that_sees_the_face(monkeypatch):
    """A fake mesh: on an image with its marker pixel at the top left it finds the face, on the
    mirror image (marker at the top right) the mirrored face, each with a little noise."""
    width = 240
    faces = [_face(np.random.default_rng(seed)) + np.array([120, 110]) for seed in (4, 5)]
    noise = np.random.default_rng(6)

    class _FakeMesh:
        def __init__(self, video: bool) -> None:
            pass

        def points(self, image: np.ndarray) -> np.ndarray:
            face = faces[int(image[1, :, 0].max() == 255)]  # row 1 marks the second face
            seen = face if image[0, 0, 0] == 255 else _mirror_pass(face, width)
            return seen + noise.normal(0, 0.05, seen.shape)

        def close(self) -> None:
            pass

    monkeypatch.setattr("backend.landmarks.mediapipe_detector.MediaPipeMesh", _FakeMesh)
    images = [np.zeros((200, width, 3), np.uint8) for _ in faces]
    for number, image in enumerate(images):
        image[0, 0] = 255
        image[1, 5:7] = 255 * number
    table, used = derive_mirror_table(images)
    assert used == 2
    np.testing.assert_array_equal(table, TABLE)


def test_a_table_that_is_not_an_involution_is_refused(tmp_path):
    path = tmp_path / "mirror.json"
    path.write_text('{"mirror": [' + ",".join(["0"] * MESH_POINTS) + "]}")
    with pytest.raises(ValueError, match="involution"):
        load_mirror_table(path)


@pytest.mark.data
def test_the_detection_of_a_mirrored_photo_is_the_detection_of_the_photo_mirrored(data_dir):
    from PIL import Image

    from backend.landmarks.mediapipe_detector import MediaPipeDetector
    from backend.landmarks.mediapipe_mapping import annotated_photos

    image_path, _ = annotated_photos(data_dir / "landmarks")[0]
    image = np.asarray(Image.open(image_path).convert("RGB"))
    gaps = {}
    for with_mirror_pass in (True, False):
        detector = MediaPipeDetector(video=False, with_mirror_pass=with_mirror_pass)
        try:
            points = detector.mesh_points(image)
            of_mirror = detector.mesh_points(np.ascontiguousarray(image[:, ::-1]))
        finally:
            detector.close()
        gaps[with_mirror_pass] = np.abs(bring_back(of_mirror, image.shape[1], TABLE) - points).max()
    assert gaps[True] < 1e-3  # the averaged detector is mirror-symmetric...
    assert gaps[False] > 1.0  # ...where MediaPipe's single pass is not


@pytest.mark.data
def test_on_photos_the_mirror_pass_brought_back_lands_on_the_direct_pass(data_dir):
    from PIL import Image

    from backend.landmarks.mediapipe_detector import MediaPipeMesh
    from backend.landmarks.mediapipe_mapping import annotated_photos

    direct_mesh, mirror_mesh = MediaPipeMesh(video=False), MediaPipeMesh(video=False)
    try:
        for image_path, _ in annotated_photos(data_dir / "landmarks"):
            image = np.asarray(Image.open(image_path).convert("RGB"))
            direct = direct_mesh.points(image)
            mirror_pass = mirror_mesh.points(np.ascontiguousarray(image[:, ::-1]))
            eyes = np.linalg.norm(direct[33] - direct[263])
            gap = np.linalg.norm(bring_back(mirror_pass, image.shape[1], TABLE) - direct, axis=1).mean()
            unpaired = np.linalg.norm(bring_back(mirror_pass, image.shape[1], np.arange(MESH_POINTS))
                                      - direct, axis=1).mean()
            assert gap < 0.06 * eyes, image_path.name  # MediaPipe's own asymmetry: about 0.03
            assert unpaired > 0.3 * eyes  # without the table, left points land on right ones
    finally:
        direct_mesh.close()
        mirror_mesh.close()
