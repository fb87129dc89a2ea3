"""FaceAdapt's Blender side (bpy, stdlib, numpy, and `backend.protocol` only).

The add-on: registration, preferences, the sidebar panel, the backend-process client, the
head builder and the results importer (plain-Python planning in `results_import.py`, bpy
writing in `scene_import.py`). Programs run as their own process with bpy importable:
`render_clip` (a Cycles performance clip with ground truth), `render_silhouette`,
`demo_scene` and `import_benchmark`.
"""
