"""A clip's face crops on disk, memory-mapped: what the encoder sees of every frame, cut once
and read by batch (encoding and every adaptation pass), so working memory does not grow with
the clip's length.

A crop folder:

    crops.npy       (F, S, S, 3) uint8 RGB crops (black where a frame is without a face)
    landmarks.npy   (F, 68, 2) f32 the detections in crop pixels
    confidence.npy  (F, 68) f32 their confidences times the head's landmark mask
    similarity.npy  (F, 3, 3) f32 footage pixels -> crop pixels (crop camera = similarity @ K)
    tracked.npy     (F,) bool whether the frame has a confident face (a crop)
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..encoder.crop import box_from_landmarks, cut_crop, to_crop
from ..events import EventSink
from ..trackers.interface import ClipFrames, Detections

STAGE = "crop"


@dataclass
class ClipCrops:
    """An opened crop folder (see the module's note); `crops` is memory-mapped."""

    folder: Path
    crops: np.ndarray
    landmarks: np.ndarray
    confidence: np.ndarray
    similarity: np.ndarray
    tracked: np.ndarray

    @property
    def size(self) -> int:
        return int(self.crops.shape[1])

    def __len__(self) -> int:
        return len(self.tracked)

    def crop_intrinsics(self, intrinsics: np.ndarray, index: np.ndarray | slice) -> np.ndarray:
        """(N, 3, 3) crop cameras of frames `index` for footage intrinsics (3, 3)."""
        return (self.similarity[index] @ intrinsics).astype(np.float32)

    @staticmethod
    def open(folder: Path) -> ClipCrops:
        def load(name: str, mmap: bool = False) -> np.ndarray:
            return np.load(folder / name, mmap_mode="r" if mmap else None, allow_pickle=False)

        return ClipCrops(folder, load("crops.npy", True), load("landmarks.npy"), load("confidence.npy"),
                         load("similarity.npy"), load("tracked.npy"))


def write_clip_crops(frames: ClipFrames, detections: Detections, landmark_mask: np.ndarray, size: int,
                     folder: Path, sink: EventSink) -> ClipCrops:
    """Cut every frame's crop (S = size) into `folder` (written beside it, renamed when
    complete); progress events of stage "crop". landmark_mask (68,) the head's placeable
    landmarks: the others are given to the encoder as missing, as in training."""
    count = len(frames)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    crops = np.lib.format.open_memmap(partial / "crops.npy", mode="w+", dtype=np.uint8,
                                      shape=(count, size, size, 3))
    landmarks = np.zeros((count, 68, 2), np.float32)
    similarity = np.tile(np.eye(3, dtype=np.float32), (count, 1, 1))
    tracked = np.zeros(count, bool)
    confidence = (detections.confidence * landmark_mask[None]).astype(np.float32)
    for i, image in enumerate(frames):
        box = (box_from_landmarks(detections.points[i], detections.confidence[i])
               if detections.found[i] else None)
        if box is not None:
            crops[i] = cut_crop(image, box, size)
            landmarks[i] = to_crop(detections.points[i], box, size)
            similarity[i] = box.similarity(size)
            tracked[i] = True
        sink.progress(STAGE, i + 1, count)
    crops.flush()
    del crops
    confidence[~tracked] = 0
    for name, array in (("landmarks", landmarks), ("confidence", confidence),
                        ("similarity", similarity), ("tracked", tracked)):
        np.save(partial / f"{name}.npy", array)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(partial, folder)
    return ClipCrops.open(folder)
