"""Exact conversion between OpenCV cameras and Blender cameras (numpy only, no bpy).

OpenCV: intrinsics K in pixels, pixel centres at integer coordinates, camera axes +X right,
+Y down, +Z forward. Blender: focal length and sensor in millimetres, `sensor_fit`, lens shift
in units of the fitted sensor dimension, camera looking down its local -Z with +Y up, pixel
(i, j) covering [i, i + 1). Square pixels are assumed (Blender's pixel aspect 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Camera-local axes: OpenCV (x right, y down, z forward) -> Blender (x right, y up, z backward).
OPENCV_TO_BLENDER_AXES = np.diag([1.0, -1.0, -1.0, 1.0])
DEFAULT_SENSOR_WIDTH_MM = 36.0


@dataclass(frozen=True)
class BlenderCamera:
    """The Blender camera and render settings that reproduce an OpenCV camera."""

    lens_mm: float
    sensor_width_mm: float
    sensor_fit: str  # "AUTO": the sensor width spans the larger image dimension
    shift_x: float
    shift_y: float
    resolution_x: int
    resolution_y: int


def fitted_size(sensor_fit: str, sensor_width_mm: float, sensor_height_mm: float, width: int,
                height: int) -> tuple[float, int]:
    """(sensor size in mm, image size in px) along the axis Blender fits the sensor to."""
    if sensor_fit == "AUTO":
        return sensor_width_mm, max(width, height)
    if sensor_fit == "HORIZONTAL":
        return sensor_width_mm, width
    if sensor_fit == "VERTICAL":
        return sensor_height_mm, height
    raise ValueError(f"unknown sensor_fit {sensor_fit!r}")


def blender_camera_from_intrinsics(intrinsics: np.ndarray, width: int, height: int,
                                   sensor_width_mm: float = DEFAULT_SENSOR_WIDTH_MM) -> BlenderCamera:
    """Blender camera settings for K (3, 3) pixels of a width x height image.

    Refuses non-square pixels (fx != fy) and skew, which a Blender camera cannot express.
    """
    k = np.asarray(intrinsics, dtype=np.float64)
    if abs(k[0, 0] - k[1, 1]) > 1e-6 * k[0, 0] or abs(k[0, 1]) > 1e-9:
        raise ValueError("Blender cameras need square pixels without skew (fx == fy, no skew)")
    fit_px = max(width, height)
    lens = k[0, 0] * sensor_width_mm / fit_px
    # Blender's principal point sits at the image centre moved by shift * fitted size; in
    # OpenCV pixels that centre is (width - 1) / 2, and image y points down.
    shift_x = ((width - 1) / 2 - k[0, 2]) / fit_px
    shift_y = (k[1, 2] - (height - 1) / 2) / fit_px
    return BlenderCamera(float(lens), sensor_width_mm, "AUTO", float(shift_x), float(shift_y),
                         int(width), int(height))


def intrinsics_from_blender_camera(lens_mm: float, sensor_width_mm: float, sensor_height_mm: float,
                                   sensor_fit: str, shift_x: float, shift_y: float, width: int,
                                   height: int) -> np.ndarray:
    """K (3, 3) in pixels (centres at integers) of a Blender perspective camera."""
    sensor_mm, fit_px = fitted_size(sensor_fit, sensor_width_mm, sensor_height_mm, width, height)
    focal = lens_mm / sensor_mm * fit_px
    cx = (width - 1) / 2 - shift_x * fit_px
    cy = (height - 1) / 2 + shift_y * fit_px
    return np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])


def opencv_pose_from_blender(camera_matrix_world: np.ndarray) -> np.ndarray:
    """World -> OpenCV camera (4, 4) from a Blender camera's matrix_world (4, 4)."""
    return OPENCV_TO_BLENDER_AXES @ np.linalg.inv(np.asarray(camera_matrix_world, np.float64))


def blender_matrix_from_opencv_pose(world_to_camera: np.ndarray) -> np.ndarray:
    """A Blender camera's matrix_world (4, 4) from a world -> OpenCV camera pose (4, 4)."""
    return np.linalg.inv(OPENCV_TO_BLENDER_AXES @ np.asarray(world_to_camera, np.float64))
