"""The file-format core: what crosses the process boundary (DESIGN.md).

Stdlib and numpy only, imported relatively, so the Blender add-on loads it under the
extension's own package without torch and the backend loads it as `backend.formats`:
the protocol (events, exit codes), the errors they carry, the head file, the results
directory, the ground-truth clip files, the per-frame camera file, atomic publishing and
the pinhole camera math both sides share. No format is implemented anywhere else.
"""
