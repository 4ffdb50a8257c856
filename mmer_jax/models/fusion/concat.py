"""Feature-level fusion by concatenation (S001's fusion and the quickstart's)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.registry import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(nn.Module):
    """Concatenates modality features in sorted-name order so parameter shapes are stable."""

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool) -> jnp.ndarray:
        return jnp.concatenate([feats[k] for k in sorted(feats)], axis=-1)
