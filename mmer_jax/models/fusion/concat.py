"""Feature-level fusion by concatenation (the quickstart's, S001's and S003's fusion)."""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.registry import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(nn.Module):
    """dict of [B, D_m] features -> [B, sum D_m]; no parameters.

    Attributes:
      order: the concatenation order (the system's, from its config; () = sorted names), see
        :mod:`mmer_jax.models.fusion.contract`.
    """

    order: tuple[str, ...] = ()

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool,
                 masks: Optional[dict[str, jnp.ndarray]] = None) -> jnp.ndarray:
        del train, masks  # vectors: no steps to mask
        keys = fusion_order(feats, self.order, "concat")
        return jnp.concatenate([feats[k] for k in keys], axis=-1)
