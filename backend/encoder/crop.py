"""Where the encoder looks: a square face crop placed from 2D landmarks.

The crop is a scale and a shift of the footage, so a crop is itself a pinhole camera: the
footage intrinsics K become `crop_intrinsics(K, box)` = A K, A the (3, 3) similarity that maps
footage pixels to crop pixels. Pixel coordinates are 0-based with centres at integers
(DESIGN.md), in the footage and in the crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# iBUG-68 points that place the crop: the chin and the inner face (brows, nose, eyes, mouth).
# The sliding jaw contour (0-7, 9-16) is left out: detectors put it on the silhouette, a head's
# fixed landmark vertices do not follow it, so training and tracking would place crops apart.
CROP_POINTS = np.array([8, *range(17, 68)])
# Crop side = SIDE_SCALE x the larger extent of CROP_POINTS; the centre moves up (toward the
# forehead) by RAISE x side: brows-to-chin is about two thirds of the face.
SIDE_SCALE = 1.7
RAISE = 0.06
# A detection at or below this confidence is not used (not for the crop, not as an input).
CONFIDENT = 0.1
# Fewer confident crop points than this: no crop (the frame counts as without a face).
MIN_POINTS = 12


@dataclass(frozen=True)
class CropBox:
    """A square in footage pixels: centre (cx, cy) and side, all float."""

    cx: float
    cy: float
    side: float

    def similarity(self, size: int) -> np.ndarray:
        """(3, 3) footage pixels -> crop pixels of a size x size crop (the box centre lands on
        the crop centre (size - 1) / 2)."""
        a = size / self.side
        half = (size - 1) / 2
        return np.array([[a, 0, half - a * self.cx], [0, a, half - a * self.cy], [0, 0, 1]])


def box_from_landmarks(points: np.ndarray, confidence: np.ndarray,
                       threshold: float = CONFIDENT) -> CropBox | None:
    """The crop of one face from its 68 landmarks (68, 2) pixels and confidences (68,);
    None when fewer than MIN_POINTS of CROP_POINTS are confident."""
    use = CROP_POINTS[confidence[CROP_POINTS] > threshold]
    if len(use) < MIN_POINTS:
        return None
    p = points[use]
    low, high = p.min(0), p.max(0)
    side = float(SIDE_SCALE * max(high[0] - low[0], high[1] - low[1]))
    if not np.isfinite(side) or side < 4:
        return None
    centre = (low + high) / 2
    return CropBox(float(centre[0]), float(centre[1] - RAISE * side), side)


def to_crop(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """(..., 2) footage pixels -> crop pixels of a size x size crop of `box`."""
    a = box.similarity(size)
    return (points @ a[:2, :2].T + a[:2, 2]).astype(np.float32)


def crop_intrinsics(intrinsics: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """(3, 3) intrinsics of the crop camera from the footage's (3, 3)."""
    return (box.similarity(size) @ intrinsics).astype(np.float32)


def cut_crop(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """(size, size, 3) uint8 crop of an (H, W, 3) uint8 image; outside the image is black.
    Shrinking more than twofold first blurs (area-like) so small crops of large footage do
    not alias."""
    import cv2

    a = size / box.side
    source = image
    matrix = box.similarity(size)
    if a < 0.5:
        # Pre-shrink by the power of two that keeps a >= 0.5, then warp the rest of the way.
        factor = 2 ** int(np.floor(np.log2(1 / a)))
        source = cv2.resize(image, (max(1, image.shape[1] // factor), max(1, image.shape[0] // factor)),
                            interpolation=cv2.INTER_AREA)
        scale = np.array([[factor, 0, (factor - 1) / 2], [0, factor, (factor - 1) / 2], [0, 0, 1]])
        matrix = matrix @ scale
    return cv2.warpAffine(source, matrix[:2], (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def crop_frame(image: np.ndarray, points: np.ndarray, confidence: np.ndarray, intrinsics: np.ndarray,
               size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """What the encoder sees of one frame (H, W, 3) uint8 with its 68 landmarks (68, 2) pixels
    and confidences (68,), footage intrinsics (3, 3): the crop (S, S, 3) uint8, the landmarks
    in crop pixels (68, 2) and the crop camera (3, 3); None without a confident face."""
    box = box_from_landmarks(points, confidence)
    if box is None:
        return None
    return cut_crop(image, box, size), to_crop(points, box, size), crop_intrinsics(intrinsics, box, size)
