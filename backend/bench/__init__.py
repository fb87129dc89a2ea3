"""Timing benchmarks: `python -m backend bench <name> [--json PATH]` print and save figures
(accuracy is the evaluation suite's: backend/evaluation)."""
