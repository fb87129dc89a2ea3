"""Head space (DESIGN.md conventions: metres, +Z up, face toward -Y) seen from cameras."""

from __future__ import annotations

import numpy as np

# Head space -> OpenCV camera axes (+X right, +Y down, +Z forward) for a camera in front of
# the face looking at it: head +X stays right, head +Z (up) becomes image up (-Y), and the
# direction the face looks (-Y) points back at the camera (-Z).
HEAD_TO_FRONT_CAMERA = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
