"""Reading footage: a movie file or a folder / pattern of images, through OpenCV.

Frames are the pixels as displayed: a movie with rotation metadata (phone footage, a display
matrix) is rotated on decode, as players and Blender's movie strips show it; its size is the
displayed size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .formats.errors import BadInput

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm")


@dataclass
class FootageInfo:
    path: Path
    frame_count: int
    fps: float
    width: int  # as displayed
    height: int
    rotation: int = 0  # degrees clockwise (0, 90, 180, 270) the stored frames are turned for display


class Footage:
    """Decoded RGB frames of a movie or an image sequence (sorted file names)."""

    def __init__(self, path: Path, fps: float | None = None) -> None:
        import cv2

        self.path = Path(path)
        if fps is not None and not fps > 0:
            raise BadInput(f"--fps {fps}: the frame rate must be positive")
        if not self.path.exists():
            raise BadInput(f"footage {self.path} does not exist; pass a movie file or a folder "
                           "of images")
        self._cv2 = cv2
        self._images: list[Path] = []
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir()
                                  if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise BadInput(f"footage folder {self.path} holds no images "
                               f"({', '.join(IMAGE_SUFFIXES)})")
            first = self._read_image(0)
            height, width = first.shape[:2]
            count, rate, rotation = len(self._images), fps or 25.0, 0
        else:
            capture = self._open_movie()
            rotation = round(capture.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
            ok, frame = capture.read() if capture.isOpened() else (False, None)
            if not ok or frame is None:
                capture.release()
                raise BadInput(f"footage {self.path} cannot be decoded as a video (OpenCV could "
                               "not read a frame); pass an mp4/mov/avi movie or a folder of images")
            height, width = frame.shape[:2]
            # The movie's own rate wins; --fps is for image sequences (and broken headers).
            rate = capture.get(cv2.CAP_PROP_FPS) or fps or 25.0
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            capture.release()
            if count <= 0:
                count = sum(1 for _ in self._movie_frames(0, None))
        self.info = FootageInfo(self.path, count, float(rate), width, height, rotation)

    def _open_movie(self):  # -> cv2.VideoCapture
        """A capture of the movie that rotates frames as its metadata says they are displayed
        (OpenCV leaves that off by default: frames come as stored, and a sideways portrait clip
        would be tracked sideways)."""
        capture = self._cv2.VideoCapture(str(self.path))
        if capture.isOpened():
            capture.set(self._cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return capture

    def _read_image(self, index: int) -> np.ndarray:
        image = self._cv2.imread(str(self._images[index]), self._cv2.IMREAD_COLOR)
        if image is None:
            raise BadInput(f"footage frame {index} ({self._images[index]}) cannot be read as an image")
        expected = getattr(self, "info", None)
        if expected is not None and image.shape[:2] != (expected.height, expected.width):
            raise BadInput(f"footage frame {index} ({self._images[index].name}) is "
                           f"{image.shape[1]}x{image.shape[0]}, the first frame "
                           f"{expected.width}x{expected.height}: all frames of a sequence must "
                           "have one size")
        return self._cv2.cvtColor(image, self._cv2.COLOR_BGR2RGB)

    def _movie_frames(self, start: int, stop: int | None) -> Iterator[np.ndarray]:
        capture = self._open_movie()
        try:
            if start:
                capture.set(self._cv2.CAP_PROP_POS_FRAMES, start)
            index = start
            while stop is None or index < stop:
                ok, frame = capture.read()
                if not ok:
                    break
                yield self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            capture.release()

    def frames(self, first: int, last: int) -> Iterator[tuple[int, np.ndarray]]:
        """(index, (H, W, 3) uint8 RGB) for frames first..last inclusive (0-based)."""
        if self._images:
            for index in range(first, last + 1):
                yield index, self._read_image(index)
            return
        index = first
        for frame in self._movie_frames(first, last + 1):
            yield index, frame
            index += 1
        if index <= last:
            # Found only now, after the work on the frames before: say which range can be used.
            usable = (f"frames {first}-{index - 1} decode: pass --frames {first}-{index - 1} to "
                      "use them" if index > first else f"no frame from {first} on decodes")
            raise BadInput(f"footage {self.path}: frame {index} cannot be decoded (the file ends "
                           f"or is damaged there, {self.info.frame_count} frames announced); "
                           f"{usable}")


def parse_frame_range(text: str | None, frame_count: int) -> tuple[int, int]:
    """`A-B` (0-based, inclusive) checked against the clip; None means the whole clip."""
    if text is None:
        return 0, frame_count - 1
    try:
        first_text, last_text = text.split("-", 1)
        first, last = int(first_text), int(last_text)
    except ValueError:
        raise BadInput(f"--frames {text!r}: expected A-B, two 0-based frame indices") from None
    if first < 0 or last < first:
        raise BadInput(f"--frames {text}: the range must satisfy 0 <= A <= B")
    if last >= frame_count:
        raise BadInput(f"--frames {text}: the clip has {frame_count} frames (0-{frame_count - 1})")
    return first, last
