"""One bpy Operator per user action: Add Head, Track Footage, Import Results, Check and Install
Backend. Each is thin: it gathers input and calls plain-Python logic in `blender_addon`."""
