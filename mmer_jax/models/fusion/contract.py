"""The contract every vector fusion in ``registry.FUSIONS`` keeps.

A vector fusion is a Flax module with a field ``order: tuple[str, ...] = ()`` and

    __call__(feats, *, train, masks=None) -> [B, D]

``feats`` maps modality names to vectors [B, D_m] (a fusion that also reads sequences takes
[B, T_m, D_m] with ``masks[name]`` [B, T_m] bool, True = valid; a vector fusion given masks
ignores them). The modalities are used in ``order``, which the system takes from its config
(:mod:`mmer_jax.models.fused`), never in the dict's iteration order: JAX rebuilds a dict with
sorted keys whenever it crosses ``jax.jit``, ``jax.grad`` or a pytree flatten, so an order read
from the dict would change with the path the features took. An empty ``order`` (a fusion used
on its own) means the sorted names.

A sequence fusion (``registry.SEQUENCE_FUSIONS``) runs over a dialogue's utterances instead:
``__call__(x [B, U, D], mask [B, U], *, train) -> [B, U, D]``, built from keyword fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def fusion_order(feats: Mapping, order: Sequence[str], fusion: str) -> list[str]:
    """The modality names of ``feats`` in the order a fusion uses them.

    Args:
      feats: name -> feature array; only its keys are read.
      order: the system's modality order; empty: sorted names.
      fusion: the calling fusion's name, for error messages.

    Returns:
      ``list(order)``, or ``sorted(feats)`` when ``order`` is empty.

    Raises:
      ValueError: ``order`` repeats a name, or names a modality ``feats`` lacks, or ``feats``
        holds one ``order`` does not name (the message names it).
    """
    if not order:
        return sorted(feats)
    if len(set(order)) != len(order):
        raise ValueError(f"{fusion} fusion: order {tuple(order)} repeats a modality")
    missing = [m for m in order if m not in feats]
    extra = sorted(set(feats) - set(order))
    if missing or extra:
        which = (f"no feature for {missing[0]!r}" if missing
                 else f"feature {extra[0]!r} is not in it")
        raise ValueError(f"{fusion} fusion: order {tuple(order)} and features "
                         f"{sorted(feats)} differ: {which}")
    return list(order)
