"""`bench dam`: lab capture and DAM training throughput on this machine, and peak memory.

A small capture of the default head (24 expressions x 4 cameras at 256^2) is made in a temp
folder, then the default DAM configuration trains for 30 steps at batch 8 and 16.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config_parser import report_option
from ..dam.model import DamArchitecture
from ..dam.training import DamTraining, train_dam
from ..events import EventSink
from ..heads.default_head import default_head
from ..lab.capture import CaptureConfig, make_capture

STEPS = 30


@dataclass(frozen=True)
class BenchDamConfig:
    json: Path | None = report_option()
    device: str = "cpu"


def bench_dam(config: BenchDamConfig, sink: EventSink) -> dict:
    device = config.device
    capture_config = CaptureConfig(expressions=24, cameras=4)
    report: dict = {"benchmark": "dam", "device": device, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        capture = make_capture(default_head(), capture_config, Path(tmp) / "capture", False, sink,
                               device)
        seconds = time.perf_counter() - start
        report["capture_views_per_s"] = round(capture_config.expressions * capture_config.cameras
                                              / seconds, 2)
        report["training"] = {}
        for batch in (8, 16):
            config = DamTraining(steps=STEPS, batch_size=batch, checkpoint_every=STEPS)
            model = train_dam(capture, Path(tmp) / f"model{batch}", DamArchitecture(), config, False,
                              sink, device)
            training = json.loads((model / "model.json").read_text())["training"]
            report["training"][f"batch{batch}"] = {
                "samples_per_s": training["samples_per_s"],
                "seconds_per_step": round(training["seconds"] / STEPS, 3)}
    report["peak_memory_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    sink.log(f"capture {report['capture_views_per_s']} views/s; training " + ", ".join(
        f"{k}: {v['samples_per_s']} samples/s" for k, v in report["training"].items())
        + f"; peak memory {report['peak_memory_mib']} MiB")
    return report
