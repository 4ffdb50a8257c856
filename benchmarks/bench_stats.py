"""Summary statistics shared by the benchmark scripts (imported from their own folder)."""

from __future__ import annotations

import statistics


def quartiles(xs: list[float]) -> dict:
    """{"median", "q1", "q3", "iqr"} of a non-empty list (inclusive quartiles, numpy's default
    linear interpolation).

    Raises:
      ValueError: ``xs`` is empty.
    """
    if not xs:
        raise ValueError("no values")
    q1, med, q3 = (xs[0],) * 3 if len(xs) == 1 else statistics.quantiles(
        xs, n=4, method="inclusive")
    return {"median": med, "q1": q1, "q3": q3, "iqr": q3 - q1}
