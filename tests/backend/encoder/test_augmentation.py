import numpy as np

from backend.encoder.augmentation import Augmentation, augment, background_photos, contact_sheet


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
