"""`python -m backend batch`: many shots tracked from one shot file, in this process or on a
Ray cluster, resumable (docs/batch.md)."""
