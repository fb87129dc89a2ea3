"""FaceAdapt backend: the PyTorch program (never imports bpy)."""
