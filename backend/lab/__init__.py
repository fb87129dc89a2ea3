"""The lab: captures of a head under controlled conditions, for learning its face model."""
