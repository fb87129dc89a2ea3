"""The .pc2 point cache: exact round trip, header bytes as Blender's Mesh Cache modifier reads
them, and refusals of files that are not (whole) point caches."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from faceadapt.blender_addon import point_cache
from faceadapt.blender_addon.point_cache import read_pc2, write_pc2


def clip(frames: int = 7, points: int = 5) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.normal(0.0, 0.1, (frames, points, 3)).astype(np.float32)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    vertices = clip()
    path = tmp_path / "cache.pc2"
    write_pc2(path, vertices, start_frame=12.0, sample_rate=0.5)
    read, start, rate = read_pc2(path)
    assert read.dtype == np.float32 and read.shape == (7, 5, 3)
    np.testing.assert_array_equal(read, vertices)
    assert (start, rate) == (12.0, 0.5)
    assert [p.name for p in tmp_path.iterdir()] == ["cache.pc2"]  # no temp file left


def test_round_trip_across_write_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks of 2 frames (2 x 5 points x 12 bytes): 7 frames take 4 blocks, the last one short.
    monkeypatch.setattr(point_cache, "_BLOCK_BYTES", 120)
    vertices = clip()
    write_pc2(tmp_path / "c.pc2", vertices.astype(np.float64), start_frame=1.0)
    np.testing.assert_array_equal(read_pc2(tmp_path / "c.pc2")[0], vertices)


def test_header_bytes(tmp_path: Path) -> None:
    vertices = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    path = tmp_path / "cache.pc2"
    write_pc2(path, vertices, start_frame=101.0, sample_rate=1.0)
    data = path.read_bytes()
    expected_header = (b"POINTCACHE2\x00" + (1).to_bytes(4, "little") + (3).to_bytes(4, "little")
                       + bytes.fromhex("0000ca42")  # 101.0 as float32, little-endian
                       + bytes.fromhex("0000803f")  # 1.0
                       + (2).to_bytes(4, "little"))
    assert data[:32] == expected_header
    assert len(data) == 32 + 2 * 3 * 3 * 4
    # Sample-major, x y z per point: the third float after the header is point 0's z of sample 0.
    assert struct.unpack_from("<f", data, 32 + 2 * 4)[0] == 2.0
    assert struct.unpack_from("<f", data, 32 + 9 * 4)[0] == 9.0  # sample 1, point 0, x


def test_truncated_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.pc2"
    write_pc2(path, clip(), start_frame=0.0)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"cache\.pc2.*7 samples of 5 points.*truncated"):
        read_pc2(path)
    path.write_bytes(b"POINTCACHE2\x00\x01")
    with pytest.raises(ValueError, match="shorter than the 32-byte"):
        read_pc2(path)


def test_wrong_signature_and_version_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.pc2"
    write_pc2(path, clip(), start_frame=0.0)
    data = bytearray(path.read_bytes())
    path.write_bytes(b"POINTCACHE3\x00" + data[12:])
    with pytest.raises(ValueError, match=r"cache\.pc2: not a point cache"):
        read_pc2(path)
    data[12:16] = (2).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="version 2"):
        read_pc2(path)


def test_bad_vertices_refused_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "cache.pc2"
    with pytest.raises(ValueError, match=r"\(frames, points, 3\)"):
        write_pc2(path, np.zeros((4, 3)), start_frame=0.0)
    vertices = clip()
    vertices[5, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_pc2(path, vertices, start_frame=0.0)
    assert list(tmp_path.iterdir()) == []
