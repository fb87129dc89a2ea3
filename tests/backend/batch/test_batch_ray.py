"""`batch --engine ray` on a local Ray cluster (this machine's CPUs): four real clips with one
made to fail, a worker killed mid-shot, and the clusters refused before any shot runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from shot_files import CLIPS, FRAMES, assert_same_results, damaged_sequence, shot_file

from backend.batch.batch_run import BatchConfig, ShotsFailed, run_batch
from backend.batch.shot_file import load_shot_file
from backend.batch.shot_run import PROGRESS, STARTED, ShotEvent
from backend.events import EventSink
from backend.formats.errors import BadInput
from conftest import REPO_ROOT

ray = pytest.importorskip("ray", reason="the farm extra (requirements-farm.lock) is not installed")


@pytest.fixture(autouse=True)
def ray_session_folder(monkeypatch) -> Iterator[None]:
    """Ray's session files in a temp folder of its own (a short path: Ray's sockets live there)."""
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as folder:
        monkeypatch.setenv("RAY_TMPDIR", folder)
        yield
    assert not ray.is_initialized()  # every batch disconnects, stopping the cluster it started


def quiet() -> EventSink:
    return EventSink(json_lines=True, out=open(os.devnull, "w"))


def reference(footage: Path, out: Path, frames: str = FRAMES) -> Path:
    """What `track` writes for a shot's settings, run as a Ray task with one CPU runs it (one
    thread, so the float sums are the same)."""
    command = [sys.executable, "-m", "backend", "track", str(footage), "--out", str(out), "--frames", frames,
               "--tracker", "landmark-fit", "--texture-size", "0", "--device", "cpu"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_four_real_clips_one_failing_then_a_rerun_that_skips_the_finished(data_dir, tmp_path):
    damaged = damaged_sequence(data_dir, tmp_path)
    path = shot_file(tmp_path, data_dir, CLIPS, f'\n[[shot]]\nname = "damaged"\nfootage = "{damaged}"\n')
    out = tmp_path / "out"
    with pytest.raises(ShotsFailed, match=r"1 of 4 shot\(s\) failed \(damaged\)"):
        run_batch(BatchConfig(path, out, engine="ray"), quiet())
    batch = json.loads((out / "batch.json").read_text())
    assert batch["engine"] == "a local Ray cluster, 1 CPU(s) per shot" and batch["status"] == "finished"
    shots = {s["name"]: s for s in batch["shots"]}
    for clip in CLIPS:
        assert (shots[clip]["status"], shots[clip]["attempts"]) == ("done", 1)
        assert_same_results(out / clip, reference(data_dir / "videos" / f"{clip}.mp4", tmp_path / "ref" / clip))
    # Never more shots at once than the cluster's CPUs hold (a task blocked on Ray lends its CPUs).
    spans = [(s["started_at"], s["started_at"] + s["wall_s"]) for s in shots.values()]
    assert max(sum(start <= moment < end for start, end in spans) for moment, _ in spans) <= 2
    failed = shots["damaged"]
    assert (failed["status"], failed["error_kind"], failed["attempts"]) == ("failed", "bad_input", 1)
    assert "frame 3 (" in failed["error"] and "cannot be read as an image" in failed["error"]
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")] and not (out / "damaged").exists()

    with pytest.raises(ShotsFailed):  # the damaged shot is tried again; the finished are not
        run_batch(BatchConfig(path, out, engine="ray"), quiet())
    statuses = {s["name"]: s["status"] for s in json.loads((out / "batch.json").read_text())["shots"]}
    assert statuses == {**dict.fromkeys(CLIPS, "skipped"), "damaged": "failed"}


def test_a_worker_killed_mid_shot_is_retried_and_nothing_is_half_written(data_dir, tmp_path):
    clip, frames = "lp_driving_d3", "0-29"
    path, out = shot_file(tmp_path, data_dir, (clip,), frames=frames), tmp_path / "out"
    workers: dict[int, int] = {}
    killed: list[int] = []

    def kill_first_attempt_while_detecting(event: ShotEvent) -> None:
        if event.kind == STARTED:
            workers[event.attempt] = event.fields["pid"]
        elif (event.kind == PROGRESS and event.attempt == 1 and event.fields["stage"] == "detect"
              and event.fields["done"] < event.fields["total"] and not killed):
            assert any(p.name.endswith(".partial") for p in out.iterdir())  # its output is half made
            os.kill(workers[1], signal.SIGKILL)
            killed.append(workers[1])

    config = BatchConfig(path, out, engine="ray", retries=1)
    run_batch(config, quiet(), observe=kill_first_attempt_while_detecting)
    assert killed and workers[2] != workers[1]
    shot = json.loads((out / "batch.json").read_text())["shots"][0]
    assert (shot["status"], shot["attempts"]) == ("done", 2)
    assert "its Ray worker died" in shot["attempt_errors"][0]
    assert sorted(p.name for p in out.iterdir()) == [".faceadapt-batch", "batch.json", "batch.md", clip]
    assert_same_results(out / clip, reference(data_dir / "videos" / f"{clip}.mp4", tmp_path / "ref", frames))


def test_an_unreachable_cluster_is_named_before_any_shot_runs(data_dir, tmp_path):
    path, out = shot_file(tmp_path, data_dir, ("lp_driving_d3",)), tmp_path / "out"
    with pytest.raises(BadInput, match=r"--address 127\.0\.0\.1:9: no Ray cluster answers there"):
        run_batch(BatchConfig(path, out, engine="ray", address="127.0.0.1:9"), quiet())
    with pytest.raises(BadInput, match="expected host:port"):
        run_batch(BatchConfig(path, out, engine="ray", address="headnode"), quiet())
    assert not out.exists()


def test_nodes_running_another_backend_are_refused_by_name(data_dir, tmp_path):
    from backend.batch.ray_engine import RayEngine
    from backend.batch.versions import locked_package_names, runtime_versions

    shots = load_shot_file(shot_file(tmp_path, data_dir, ("lp_driving_d3",)), tmp_path / "out")
    driver = runtime_versions(locked_package_names())
    assert {"faceadapt", "python", "ray", "torch", "mediapipe"} <= set(driver)
    engine = RayEngine(None, 1)
    try:  # this cluster's node against a driver that had another torch and another FaceAdapt
        with pytest.raises(BadInput) as refused:
            engine.connect(shots, expected={**driver, "torch": "2.0.0", "faceadapt": "0.0.1"})
    finally:
        engine.close()
    message = refused.value.message
    assert "runs another backend than this driver" in message
    assert f"torch {driver['torch']}, the driver has 2.0.0" in message
    assert f"faceadapt {driver['faceadapt']}, the driver has 0.0.1" in message
    assert "requirements-farm.lock" in message

    with pytest.raises(BadInput, match="--cpus-per-shot 64: no node of the Ray cluster has that many CPUs"):
        engine = RayEngine(None, 64)
        try:
            engine.connect(shots)
        finally:
            engine.close()


def running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (exited, waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def descendants(root: int) -> list[int]:
    """The processes started under `root` (a local Ray cluster's servers and workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        found += children.get(pending[-1], [])
        pending += children.pop(pending.pop(), [])
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_cancel_stops_every_shot_and_worker_and_leaves_nothing_half_written(data_dir, tmp_path, signum):
    from backend.formats import protocol

    # Frames no other test detects, so the shots are still detecting when the cancel comes.
    path = shot_file(tmp_path, data_dir, ("lp_driving_d0", "lp_driving_d3"), frames="10-69")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "backend", "batch", str(path), "--out", str(out), "--engine", "ray",
               "--events"]
    # A cache of its own: with the detections another variant cached, the shots would skip
    # detecting and finish before any cancel (they did in CI).
    env = dict(os.environ, FACEADAPT_CACHE=str(tmp_path / "cache"))
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=env)
    cluster = None
    for line in process.stdout:  # both shots running, one of them detecting: outputs half made
        event = protocol.parse_event_line(line)
        if event and str(event.get("stage")).endswith(" detect") and event["done"] < event["total"]:
            cluster = descendants(process.pid)
            process.send_signal(signum)
            break
    rest, _ = process.communicate(timeout=120)
    assert cluster is not None, "the batch finished without a shot reporting its detection under way"
    assert process.returncode == protocol.EXIT_CODES[protocol.ERROR_CANCELLED]
    last = protocol.parse_event_line(rest.splitlines()[-1])
    assert last["kind"] == "cancelled" and "unfinished shot(s) stopped" in last["message"]
    batch = json.loads((out / "batch.json").read_text())
    assert batch["status"] == "cancelled" and batch["counts"]["cancelled"] >= 1
    # Nothing half-written: only the results of a shot that finished within the grace, reported done.
    done = [s["name"] for s in batch["shots"] if s["status"] == "done"]
    expected = [".faceadapt-batch", "batch.json", "batch.md", *done]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    assert len(cluster) >= 3  # Ray's servers and the two workers
    deadline = time.monotonic() + 10
    while [pid for pid in cluster if running(pid)] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [pid for pid in cluster if running(pid)]  # no orphaned worker or server
