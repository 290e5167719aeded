"""Measured experiments a reader can rerun: `gankit study NAME` (augment)."""
