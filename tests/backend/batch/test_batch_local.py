"""`batch --engine local`: each shot's results as `track` writes them, re-runs that skip what is
finished, failures reported without stopping the others, retries only where the input is not
at fault, a cancel that leaves nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shot_files import FRAMES, assert_same_results, damaged_sequence, shot_file

from backend.batch.batch_run import BatchConfig, ShotsFailed, run_batch
from backend.events import EventSink
from backend.formats import protocol
from backend.formats.errors import BadInput
from backend.track import TrackSettings, run_track
from conftest import REPO_ROOT


def quiet() -> EventSink:
    return EventSink(json_lines=True, out=open(os.devnull, "w"))


def report(out: Path) -> dict:
    return json.loads((out / "batch.json").read_text())


def test_shots_are_what_track_writes_and_a_rerun_skips_them(data_dir, tmp_path):
    clips = ("lp_driving_d0", "lp_driving_d3")
    path, out = shot_file(tmp_path, data_dir, clips), tmp_path / "out"
    assert run_batch(BatchConfig(path, out), quiet()) == out / "batch.json"
    for clip in clips:
        reference = run_track(TrackSettings(footage=data_dir / "videos" / f"{clip}.mp4", out=tmp_path / clip,
                                            frames=FRAMES, tracker="landmark-fit", texture_size=0), quiet())
        assert_same_results(out / clip, reference)
    first = report(out)
    assert first["counts"] == {"done": 2, "skipped": 0, "failed": 0, "cancelled": 0}
    assert first["status"] == "finished"
    shot = first["shots"][0]
    assert (shot["name"], shot["attempts"], shot["frame_count"]) == ("lp_driving_d0", 1, 6)
    assert shot["result"]["metrics"]["frames_tracked"] == 6 and shot["results"] == str(out / clips[0])
    assert "| lp_driving_d0 | done | 6 | landmark-fit | 1 |" in (out / "batch.md").read_text()

    written = {clip: (out / clip / "tracking.npz").stat().st_mtime_ns for clip in clips}
    run_batch(BatchConfig(path, out), quiet())
    assert report(out)["counts"]["skipped"] == 2
    assert all((out / c / "tracking.npz").stat().st_mtime_ns == written[c] for c in clips)

    # Another frame range for one shot: only that one runs again, over its old results.
    text = path.read_text()
    path.write_text(text.replace('name = "lp_driving_d3"', 'name = "lp_driving_d3"\nframes = "2-4"'))
    run_batch(BatchConfig(path, out), quiet())
    statuses = {s["name"]: (s["status"], s["frame_count"]) for s in report(out)["shots"]}
    assert statuses == {"lp_driving_d0": ("skipped", 6), "lp_driving_d3": ("done", 3)}
    assert json.loads((out / "lp_driving_d3" / "result.json").read_text())["source"]["frame_range"] == [2, 4]


def test_a_failing_shot_is_reported_not_retried_and_the_others_finish(data_dir, tmp_path):
    path = shot_file(tmp_path, data_dir, ("lp_driving_d3",),
                     f'\n[[shot]]\nname = "damaged"\nfootage = "{damaged_sequence(data_dir, tmp_path)}"\n')
    out = tmp_path / "out"
    with pytest.raises(ShotsFailed) as failed:
        run_batch(BatchConfig(path, out, retries=2), quiet())
    assert failed.value.kind == protocol.ERROR_BAD_INPUT
    assert "1 of 2 shot(s) failed (damaged)" in failed.value.message
    shots = {s["name"]: s for s in report(out)["shots"]}
    assert shots["lp_driving_d3"]["status"] == "done"
    damaged = shots["damaged"]
    assert (damaged["status"], damaged["attempts"], damaged["error_kind"]) == ("failed", 1, "bad_input")
    assert "frame 3 (" in damaged["error"] and "cannot be read as an image" in damaged["error"]
    assert damaged["results"] is None and not (out / "damaged").exists()
    expected = [".faceadapt-batch", "batch.json", "batch.md", "lp_driving_d3"]
    assert sorted(p.name for p in out.iterdir()) == expected
    assert "**damaged** (bad_input)" in (out / "batch.md").read_text()

    # --partial-ok (Track Strips): the finished shot is kept, the failure is a warning, exit 0.
    assert run_batch(BatchConfig(path, out, partial_ok=True), quiet()) == out / "batch.json"
    assert {s["name"]: s["status"] for s in report(out)["shots"]} == {"lp_driving_d3": "skipped",
                                                                     "damaged": "failed"}


def test_a_failure_not_of_the_input_is_retried(data_dir, tmp_path, monkeypatch):
    import backend.track

    real, calls = backend.track.run_track, []

    def flaky(settings, sink):  # the first attempt meets a failing disk, the next a good one
        calls.append(settings.out)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(settings, sink)

    monkeypatch.setattr(backend.track, "run_track", flaky)
    path, out = shot_file(tmp_path, data_dir, ("lp_driving_d3",)), tmp_path / "out"
    run_batch(BatchConfig(path, out, retries=1), quiet())
    shot = report(out)["shots"][0]
    assert (shot["status"], shot["attempts"]) == ("done", 2)
    assert shot["attempt_errors"] == ["attempt 1: OSError: [Errno 28] No space left on device"]

    calls.clear()
    with pytest.raises(ShotsFailed) as failed:
        run_batch(BatchConfig(path, tmp_path / "again", retries=0), quiet())
    assert failed.value.kind == protocol.ERROR_INTERNAL and len(calls) == 1


def test_batch_settings_are_checked_before_anything_runs(data_dir, tmp_path):
    path = shot_file(tmp_path, data_dir, ("lp_driving_d3",))
    with pytest.raises(BadInput, match="--retries -1"):
        BatchConfig(path, tmp_path / "out", retries=-1)
    with pytest.raises(BadInput, match="--address names a Ray cluster: pass --engine ray"):
        BatchConfig(path, tmp_path / "out", address="10.0.0.1:6379")
    with pytest.raises(BadInput, match="--cpus-per-shot is what Ray reserves per shot"):
        BatchConfig(path, tmp_path / "out", cpus_per_shot=4)
    (tmp_path / "cuda.toml").write_text(path.read_text().replace('device = "cpu"', 'device = "cuda"'))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(BadInput, match=r"shot 1 \(lp_driving_d3\): field 'device': --device cuda: no CUDA"):
            run_batch(BatchConfig(tmp_path / "cuda.toml", tmp_path / "out"), quiet())
        assert not (tmp_path / "out").exists()


def test_results_the_batch_did_not_write_are_never_replaced(data_dir, tmp_path):
    path, out = shot_file(tmp_path, data_dir, ("lp_driving_d3",)), tmp_path / "out"
    run_track(TrackSettings(footage=data_dir / "videos" / "lp_driving_d3.mp4", out=out / "lp_driving_d3",
                            frames="0-2", tracker="landmark-fit", texture_size=0), quiet())
    before = (out / "lp_driving_d3" / "result.json").read_text()
    with pytest.raises(BadInput, match="results directories this batch did not write stand where"):
        run_batch(BatchConfig(path, out), quiet())
    assert (out / "lp_driving_d3" / "result.json").read_text() == before


def backend_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "backend", *args]


def test_command_line_events_exit_codes_and_a_clean_cancel(data_dir, tmp_path):
    command = backend_command("batch", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o"), "--events")
    bad = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == protocol.EXIT_CODES[protocol.ERROR_BAD_INPUT]
    assert "none.toml does not exist" in bad.stdout and not (tmp_path / "o").exists()

    path, out = shot_file(tmp_path, data_dir, ("lp_driving_d0", "lp_driving_d3")), tmp_path / "out"
    command = backend_command("batch", str(path), "--out", str(out), "--events")
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    events = []
    for line in process.stdout:  # cancel once the first shot is fitting: its output is half made
        events.append(protocol.parse_event_line(line))
        if events[-1] and events[-1].get("stage") == "lp_driving_d0 fit":
            process.send_signal(signal.SIGTERM)
            break
    rest, _ = process.communicate(timeout=120)
    events += [protocol.parse_event_line(line) for line in rest.splitlines()]
    assert process.returncode == protocol.EXIT_CODES[protocol.ERROR_CANCELLED]
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "cancelled"
    batch = [e for e in events if e and e.get("stage") == "batch"]
    assert batch[0]["values"] == {"done": 0.0, "running": 0.0, "failed": 0.0, "remaining": 2.0}
    assert report(out)["status"] == "cancelled"
    assert [s["status"] for s in report(out)["shots"]] == ["cancelled", "cancelled"]
    assert sorted(p.name for p in out.iterdir()) == [".faceadapt-batch", "batch.json", "batch.md"]  # no partial

    start = time.monotonic()
    done = subprocess.run(backend_command("batch", str(path), "--out", str(out), "--events"), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:]
    result = protocol.parse_event_line(done.stdout.splitlines()[-1])
    assert result == {"event": "result", "path": str(out / "batch.json")}
    assert report(out)["counts"]["done"] == 2 and time.monotonic() - start < 600
