"""Scoring tracking results against ground truth and real footage."""
