"""Reproductions of the seed papers: what the papers report (``papers``), the ``mmer reproduce``
harness that sets our seeds beside it (``harness.reproduce``) and its report files (``report``)."""

from mmer_jax.reproduce.papers import (
    RESULTS,
    Result,
    confusion_metrics,
    floors,
    lookup,
    reported,
)

__all__ = ["RESULTS", "Result", "confusion_metrics", "floors", "lookup", "reported"]
