"""Benchmarks: `python -m backend bench <name> [--json PATH]` print and save figures."""
