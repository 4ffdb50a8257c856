"""Feature-level fusion by concatenation (the quickstart's, S001's and S003's fusion)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.registry import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(nn.Module):
    """dict of [B, D_m] features -> [B, sum D_m]; no parameters.

    Attributes:
      ordered: False concatenates in sorted-name order (parameter shapes then do not depend on
        how the dict was built); True keeps the dict's order (a system's own modality order).
    """

    ordered: bool = False

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool) -> jnp.ndarray:
        del train
        keys = list(feats) if self.ordered else sorted(feats)
        return jnp.concatenate([feats[k] for k in keys], axis=-1)
