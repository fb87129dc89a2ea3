"""The monocular image encoder E(frame crop) -> (DAM code z, rigid head pose h)."""
