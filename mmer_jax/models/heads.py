"""Classification heads; importing this module registers them in ``registry.HEADS``."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.registry import HEADS


@HEADS.register("mlp")
class MLPHead(nn.Module):
    """[B, D] -> logits [B, C]: optional hidden layer, dropout, linear classifier."""

    num_classes: int
    hidden: int = 128
    dropout: float = 0.3

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        if self.hidden:
            x = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, name="out")(x)
