"""What a node runs the backend with, against the driver."""

from __future__ import annotations

import pytest

from backend.batch.versions import faceadapt_version, locked_package_names, refuse_mismatches, runtime_versions
from backend.formats.errors import BadInput
from conftest import REPO_ROOT


def test_versions_here_cover_faceadapt_python_and_every_locked_package():
    names = locked_package_names()
    assert {"torch", "mediapipe", "ray", "numpy", "msgpack"} <= set(names)
    versions = runtime_versions([*names, "no-such-package"])
    assert versions["faceadapt"] == faceadapt_version() != "unknown"
    assert versions["python"].count(".") == 1  # major.minor
    assert versions["no-such-package"] == "missing"
    assert faceadapt_version(REPO_ROOT / "nowhere") == "unknown"


def test_every_difference_of_every_node_is_named():
    driver = {"faceadapt": "0.1.0", "python": "3.11", "torch": "2.13.0", "ray": "2.60.0"}
    nodes = {"10.0.0.2 (ab12cd34)": dict(driver),
             "10.0.0.3 (ef56ab78)": {**driver, "torch": "2.12.0", "python": "3.12"},
             "10.0.0.4 (0011aabb)": {"faceadapt": "0.1.0", "python": "3.11", "torch": "2.13.0"}}
    refuse_mismatches(driver, {"10.0.0.2 (ab12cd34)": dict(driver)}, "10.0.0.1:6379")
    with pytest.raises(BadInput) as refused:
        refuse_mismatches(driver, nodes, "10.0.0.1:6379")
    lines = refused.value.message.splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "node 10.0.0.3 (ef56ab78): python 3.12, the driver has 3.11",
        "node 10.0.0.3 (ef56ab78): torch 2.12.0, the driver has 2.13.0",
        "node 10.0.0.4 (0011aabb): ray missing, the driver has 2.60.0",
    ]
    assert "the Ray cluster at 10.0.0.1:6379 runs another backend" in refused.value.message
