"""Differentiable rendering primitives in the PyTorch graph (DESIGN.md, "Renderer")."""
