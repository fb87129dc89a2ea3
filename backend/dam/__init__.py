"""The Deep Appearance Model: a head's face model learnt from its lab capture."""
