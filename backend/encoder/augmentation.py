"""What a real camera and room do to a face that the lab does not, drawn anew for every
training sample (docs/encoder.md shows a contact sheet):

photographic backgrounds (scikit-image's bundled sample photographs, none with a face),
partial occluders (bars, blobs and glasses of random colour or photographic texture), white
balance, exposure and gamma, motion blur, low resolution, sensor noise and JPEG compression;
and more of a detector's error on the landmarks the encoder is given (`detected_landmarks`;
the detector's own error is in the views, lab_views.py).
Geometry-changing factors (lens, crop jitter, light direction) are rendered in (lab_views.py).
Images are (S, S, 3) uint8 RGB; masks (S, S) uint8, 255 on the head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# scikit-image's sample photographs that ship inside its wheel and show no face (astronaut
# and lfw_subset do: a second face would teach the encoder nothing it should learn).
BACKGROUND_FILES = ("brick.png", "chelsea.png", "coffee.png", "color.png", "grass.png",
                    "gravel.png", "motorcycle_left.png", "rocket.jpg", "hubble_deep_field.jpg",
                    "page.png", "text.png", "clock_motion.png", "coins.png", "camera.png",
                    "retina.jpg", "horse.png", "ihc.png", "moon.png")


@dataclass(frozen=True)
class Augmentation:
    """Probabilities and ranges of every factor (all on by default, as training uses them)."""

    background: float = 0.9  # else a flat colour
    occluder: float = 0.35
    glasses: float = 0.12
    white_balance_sigma: float = 0.12  # log gain per channel
    exposure_sigma: float = 0.35  # log gain
    gamma_low: float = 0.75
    gamma_high: float = 1.35
    motion_blur: float = 0.3
    motion_blur_max_px: int = 11
    low_resolution: float = 0.25
    low_resolution_max: float = 4.0  # downscale factor
    noise: float = 0.6
    noise_max: float = 12.0  # 8-bit levels at mid grey
    jpeg: float = 0.6
    jpeg_low: int = 12
    jpeg_high: int = 90
    # Per-point error added, as a fraction of the face height: on the detector's own landmarks
    # of the render (a little more than it makes), or, where it found no face, on the truth.
    detected_landmark_error: float = 0.004
    landmark_error: float = 0.015
    landmark_error_spread: float = 0.5  # log sigma of a sample's error scale (easy and hard frames)
    landmark_dropout: float = 0.1  # a sample loses a random fifth of its points (unconfident)


def detected_landmarks(points: np.ndarray, error_px: np.ndarray, rng: np.random.Generator,
                       config: Augmentation) -> tuple[np.ndarray, np.ndarray]:
    """More of a detector's error on landmarks (B, 68, 2) crop pixels: Gaussian per point at
    `error_px` (B,) times a per-sample scale (easy and hard frames), and in some samples a fifth
    of the points missing. Returns points (B, 68, 2) f32 and confidence (B, 68) f32 in {0, 1}."""
    count = len(points)
    scale = error_px * np.exp(rng.normal(0, config.landmark_error_spread, count))
    moved = points + rng.normal(0, 1, points.shape) * scale[:, None, None]
    confidence = np.ones(points.shape[:2], np.float32)
    for b in np.nonzero(rng.random(count) < config.landmark_dropout)[0]:
        confidence[b, rng.choice(points.shape[1], points.shape[1] // 5, replace=False)] = 0
    return moved.astype(np.float32), confidence


@lru_cache(maxsize=1)
def background_photos() -> tuple[np.ndarray, ...]:
    """The sample photographs as (H, W, 3) uint8 RGB (grey ones tripled)."""
    import cv2
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    photos = []
    for name in BACKGROUND_FILES:
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is not None:
            photos.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not photos:
        raise RuntimeError(f"no background photographs found in {folder}: is scikit-image "
                           "installed with its sample data?")
    return tuple(photos)


def _photo_patch(size: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    photos = background_photos()
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.3, 1.0) * min(h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    patch = cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def _occlude(image: np.ndarray, rng: np.random.Generator, config: Augmentation) -> None:
    """Draw one occluder over the face area in place: a blob, a bar, or a hand-like cluster."""
    import cv2

    size = image.shape[0]
    layer = np.zeros((size, size), np.uint8)
    centre = (int(rng.uniform(0.25, 0.75) * size), int(rng.uniform(0.3, 0.95) * size))
    kind = rng.integers(3)
    if kind == 0:
        axes = (int(rng.uniform(0.1, 0.3) * size), int(rng.uniform(0.06, 0.2) * size))
        cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    elif kind == 1:
        angle = rng.uniform(0, math.pi)
        length, thickness = rng.uniform(0.4, 1.0) * size, int(rng.uniform(0.04, 0.15) * size)
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        cv2.line(layer, (int(centre[0] - dx), int(centre[1] - dy)),
                 (int(centre[0] + dx), int(centre[1] + dy)), 255, max(thickness, 2))
    else:  # fingers: parallel rounded bars from one side
        angle = rng.uniform(-0.6, 0.6) + (0 if rng.random() < 0.5 else math.pi)
        width = int(rng.uniform(0.05, 0.08) * size)
        for finger in range(int(rng.integers(2, 5))):
            offset = (finger - 1.5) * width * 1.1
            start = (int(centre[0] - math.sin(angle) * offset), int(centre[1] + math.cos(angle) * offset))
            reach = rng.uniform(0.3, 0.6) * size
            end = (int(start[0] + math.cos(angle) * reach), int(start[1] + math.sin(angle) * reach))
            cv2.line(layer, start, end, 255, width)
    fill = (_photo_patch(size, rng) if rng.random() < 0.4
            else np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), image.shape))
    alpha = cv2.GaussianBlur(layer, (3, 3), 0)[..., None].astype(np.float32) / 255
    image[:] = (image * (1 - alpha) + fill * alpha).astype(np.uint8)


def _glasses(image: np.ndarray, rng: np.random.Generator) -> None:
    """Two rims and a bridge across the eye line, in place (the crop's upper middle)."""
    import cv2

    size = image.shape[0]
    y = int(rng.uniform(0.36, 0.5) * size)
    spread = rng.uniform(0.15, 0.22) * size
    axes = (int(rng.uniform(0.1, 0.15) * size), int(rng.uniform(0.06, 0.1) * size))
    colour = tuple(int(c) for c in rng.integers(0, 120, 3))
    thickness = int(rng.integers(1, 4))
    cx = size / 2 + rng.normal(0, 0.03) * size
    for side in (-1, 1):
        cv2.ellipse(image, (int(cx + side * spread), y), axes, 0, 0, 360, colour, thickness,
                    cv2.LINE_AA)
    cv2.line(image, (int(cx - spread + axes[0]), y), (int(cx + spread - axes[0]), y), colour,
             thickness, cv2.LINE_AA)


def _motion_blur(image: np.ndarray, rng: np.random.Generator, max_px: int) -> np.ndarray:
    import cv2

    length = int(rng.integers(3, max_px + 1))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1.0
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


def augment(crop: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            config: Augmentation = Augmentation()) -> np.ndarray:
    """A training image (S, S, 3) uint8 from a lab render and its mask."""
    import cv2

    size = crop.shape[0]
    if rng.random() < config.background:
        background = _photo_patch(size, rng)
    else:
        background = np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), crop.shape)
    # A slightly soft silhouette: the lab render's edge is aliased, a camera's is not.
    alpha = cv2.GaussianBlur(mask, (3, 3), 0)[..., None].astype(np.float32) / 255
    image = (crop * alpha + background * (1 - alpha)).astype(np.uint8)
    if rng.random() < config.occluder:
        _occlude(image, rng, config)
    if rng.random() < config.glasses:
        _glasses(image, rng)
    linear = image.astype(np.float32) / 255
    gains = np.exp(rng.normal(0, config.white_balance_sigma, 3) + rng.normal(0, config.exposure_sigma))
    linear = np.clip(linear * gains, 0, 1) ** rng.uniform(config.gamma_low, config.gamma_high)
    image = (linear * 255).astype(np.uint8)
    if rng.random() < config.motion_blur:
        image = _motion_blur(image, rng, config.motion_blur_max_px)
    if rng.random() < config.low_resolution:
        small = max(8, int(size / rng.uniform(1.5, config.low_resolution_max)))
        image = cv2.resize(cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                           interpolation=cv2.INTER_LINEAR)
    if rng.random() < config.noise:
        level = rng.uniform(1, config.noise_max)
        signal = image.astype(np.float32)
        # Shot noise grows with the signal, read noise does not: sigma = level at mid grey.
        sigma = level * np.sqrt((signal + 16) / (128 + 16))
        image = np.clip(signal + rng.normal(0, 1, image.shape) * sigma, 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg:
        quality = int(rng.integers(config.jpeg_low, config.jpeg_high + 1))
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(image)


def contact_sheet(crops: np.ndarray, masks: np.ndarray, rng: np.random.Generator, variants: int = 7,
                  config: Augmentation = Augmentation()) -> np.ndarray:
    """(rows x S, (1 + variants) x S, 3) uint8: per row a lab render, then `variants` draws
    of the augmentation of it (docs/encoder.md's figure)."""
    rows = []
    for crop, mask in zip(crops, masks, strict=True):
        crop, mask = np.asarray(crop), np.asarray(mask)
        rows.append(np.concatenate([crop] + [augment(crop, mask, rng, config) for _ in range(variants)], 1))
    return np.concatenate(rows, 0)
