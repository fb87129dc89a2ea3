"""Trackers: from a clip (its detected landmarks, its frames) to per-frame head pose, vertices
and weights. One interface (interface.py), one registry (registry.py), one module per
tracker (landmark_fit.py, mediapipe_blendshapes.py); backend/track.py is the pipeline that
runs any of them."""
