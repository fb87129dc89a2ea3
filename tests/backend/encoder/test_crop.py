import numpy as np
import pytest

from backend.encoder.crop import (
    CROP_POINTS,
    CropBox,
    box_from_landmarks,
    crop_frame,
    crop_intrinsics,
    cut_crop,
    to_crop,
)
from backend.formats.camera import centred_intrinsics


def _face_points(cx=200.0, cy=150.0, size=60.0):
    rng = np.random.default_rng(0)
    points = np.stack([cx + rng.uniform(-size / 2, size / 2, 68), cy + rng.uniform(-size / 2, size / 2, 68)], 1)
    return points.astype(np.float32)


def test_the_box_covers_the_face_and_ignores_the_jaw_contour():
    points = _face_points()
    box = box_from_landmarks(points, np.ones(68))
    moved = points.copy()
    moved[:8] += 500  # the sliding contour, far away: it does not place the crop
    assert box_from_landmarks(moved, np.ones(68)) == box
    inner = points[CROP_POINTS]
    assert box.side > np.ptp(inner, 0).max()
    assert abs(box.cx - (inner[:, 0].min() + inner[:, 0].max()) / 2) < 1e-3


def test_no_box_from_too_few_confident_points():
    confidence = np.zeros(68)
    confidence[CROP_POINTS[:5]] = 1
    assert box_from_landmarks(_face_points(), confidence) is None


@pytest.mark.parametrize("side", [40.0, 128.0, 900.0])  # upscaled, 1:1, shrunk 7x (pre-shrink path)
def test_a_footage_pixel_lands_where_the_crop_camera_says(side):
    height, width = 1200, 1000
    image = np.zeros((height, width, 3), np.uint8)
    point = np.array([494.0, 606.0])
    image[602:611, 490:499] = 255  # a 9-px square centred on the point
    box = CropBox(500.0, 600.0, side)
    crop = cut_crop(image, box, 128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    k = centred_intrinsics(800.0, width, height)
    # A 3D point on the ray of `point` projects through the crop camera to where the square lands.
    ray = np.linalg.solve(k, [*point, 1.0])
    projected = crop_intrinsics(k, box, 128) @ ray
    expected = projected[:2] / projected[2]
    weight = crop[..., 0].astype(float)
    ys, xs = np.mgrid[:128, :128]
    centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    assert np.abs(centroid - expected).max() < 1.0
    # The landmarks the encoder is given land there too.
    assert np.abs(to_crop(point[None], box, 128)[0] - expected).max() < 1e-3


def test_a_face_leaving_the_frame_crops_with_black_outside():
    image = np.full((100, 100, 3), 200, np.uint8)
    crop = cut_crop(image, CropBox(95.0, 50.0, 60.0), 64)
    assert crop[:, -10:].max() == 0 and crop[:, :20].min() == 200


def test_a_frame_crops_with_its_landmarks_in_crop_pixels_or_not_at_all():
    image = np.zeros((300, 400, 3), np.uint8)
    points = _face_points()
    k = centred_intrinsics(400.0, 400, 300)
    crop, landmarks, camera = crop_frame(image, points, np.ones(68), k, 64)
    box = box_from_landmarks(points, np.ones(68))
    assert crop.shape == (64, 64, 3) and landmarks.shape == (68, 2)
    assert np.allclose(camera, crop_intrinsics(k, box, 64))
    # The crop points span the crop's middle 1/SIDE_SCALE, whatever the face's size in the frame.
    assert 64 / 1.8 < np.ptp(landmarks[CROP_POINTS], 0).max() < 64 / 1.6
    assert crop_frame(image, points, np.zeros(68), k, 64) is None
