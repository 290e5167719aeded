"""Model families: what each kind of GAN declares for the one training core (`base.py`)."""

from .base import SHARED, Batch, Family, Phase, check_keys, families, family_of, resolve, run_keys

__all__ = ["SHARED", "Batch", "Family", "Phase", "check_keys", "families", "family_of", "resolve", "run_keys"]
