"""Timing benchmarks by name (the evaluation suite is `python -m backend suite`)."""

from __future__ import annotations

import argparse

from ..events import EventSink
from ..formats.errors import BadInput


def run_bench(name: str, args: argparse.Namespace, sink: EventSink) -> dict:
    if name == "track":
        from .track_bench import bench_track

        return bench_track(args, sink)
    if name == "render":
        from .render_bench import bench_render

        return bench_render(args, sink)
    if name == "dam":
        from .dam_bench import bench_dam

        return bench_dam(args, sink)
    if name == "import":
        from .import_bench import bench_import

        return bench_import(args, sink)
    raise BadInput(f"unknown benchmark {name!r}")
