"""What the seed papers report, as data, and helpers to compare our runs against it."""

from mmer_jax.reproduce.papers import RESULTS, Result, confusion_metrics, lookup  # noqa: F401
