"""Model families: what each kind of GAN declares for the one training core (`base.py`)."""

from . import anomaly, noise2image, semisup, speech, text2image, translation  # noqa: F401  (register the families)
from .base import SHARED, Batch, Family, Phase, check_keys, families, family_of, resolve, run_keys

__all__ = ["SHARED", "Batch", "Family", "Phase", "check_keys", "families", "family_of", "resolve", "run_keys"]
