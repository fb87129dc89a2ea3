"""FaceAdapt's Blender side (bpy, stdlib, numpy only).

Programs run as their own process with bpy importable: `python -m blender_addon.render_clip`
renders a performance clip of a head with Cycles and its ground truth (used by `make demo`).
The add-on registration, preferences, panels and the backend client come with the extension
(issue 3).
"""
