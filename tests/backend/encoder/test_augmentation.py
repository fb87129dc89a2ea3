import numpy as np

from backend.encoder.augmentation import (
    Augmentation,
    augment,
    background_photos,
    contact_sheet,
    detected_landmarks,
)


def _render():
    crop = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    crop[16:48, 16:48] = (200, 150, 120)
    mask[16:48, 16:48] = 255
    return crop, mask


def test_the_background_photographs_ship_with_scikit_image():
    photos = background_photos()
    assert len(photos) >= 12 and all(p.ndim == 3 and p.shape[2] == 3 for p in photos)


def test_augmentation_is_seeded_and_changes_the_image():
    crop, mask = _render()
    first = augment(crop, mask, np.random.default_rng(3))
    again = augment(crop, mask, np.random.default_rng(3))
    other = augment(crop, mask, np.random.default_rng(4))
    assert first.shape == crop.shape and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.abs(first.astype(int) - crop).mean() > 5


def test_with_everything_off_only_the_background_is_replaced():
    crop, mask = _render()
    off = Augmentation(background=1.0, occluder=0, glasses=0, white_balance_sigma=0, exposure_sigma=0,
                       gamma_low=1, gamma_high=1, motion_blur=0, low_resolution=0, noise=0, jpeg=0)
    image = augment(crop, mask, np.random.default_rng(0), off)
    assert np.abs(image[20:44, 20:44].astype(int) - crop[20:44, 20:44]).max() <= 1
    assert np.abs(image[:8].astype(int) - crop[:8]).mean() > 10  # a photograph behind the head


def test_the_contact_sheet_shows_each_render_and_its_variants():
    crop, mask = _render()
    sheet = contact_sheet(np.stack([crop, crop]), np.stack([mask, mask]), np.random.default_rng(0), variants=3)
    assert sheet.shape == (128, 256, 3)
    assert np.array_equal(sheet[:64, :64], crop)


def test_detected_landmarks_err_as_asked_and_sometimes_go_missing():
    truth = np.random.default_rng(0).uniform(20, 100, (400, 68, 2)).astype(np.float32)
    error_px = np.full(400, 1.2)
    config = Augmentation(landmark_error_spread=0.0)
    points, confidence = detected_landmarks(truth, error_px, np.random.default_rng(1), config)
    error = points - truth
    assert abs(error.std() - 1.2) < 0.05
    missing = confidence == 0
    assert set(np.unique(confidence)) == {0.0, 1.0}
    samples = missing.any(1)
    assert 0.05 < samples.mean() < 0.15 and np.all(missing[samples].sum(1) == 68 // 5)
    again, _ = detected_landmarks(truth, error_px, np.random.default_rng(1), config)
    assert np.array_equal(points, again)
