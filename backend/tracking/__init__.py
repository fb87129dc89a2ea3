"""Trackers: from per-frame landmarks to head pose, expression and camera."""
