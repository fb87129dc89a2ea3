"""Benchmarks by name."""

from __future__ import annotations

import argparse

from backend.errors import BadInput
from backend.events import EventSink


def run_bench(name: str, args: argparse.Namespace, sink: EventSink) -> dict:
    if name == "track":
        from backend.bench.track_bench import bench_track

        return bench_track(args, sink)
    if name == "render":
        from backend.bench.render_bench import bench_render

        return bench_render(args, sink)
    if name == "dam":
        from backend.bench.dam_bench import bench_dam

        return bench_dam(args, sink)
    if name == "import":
        from backend.bench.import_bench import bench_import

        return bench_import(args, sink)
    if name == "suite":
        from backend.bench.suite import run_suite

        return run_suite(args, sink)
    raise BadInput(f"unknown benchmark {name!r}")
