"""Classification heads; importing this module registers them in ``registry.HEADS``."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.registry import HEADS


@HEADS.register("mlp")
class MLPHead(nn.Module):
    """[B, D] -> logits [B, C]: optional hidden layer, dropout, linear classifier.

    Attributes:
      num_classes: C.
      hidden: width of the hidden ReLU layer (0: none).
      dropout: before the classifier.
      hidden_name, out_name: the two layers' names (S003 keeps its ``fc`` and ``head_out``).
    """

    num_classes: int
    hidden: int = 128
    dropout: float = 0.3
    hidden_name: str = "hidden"
    out_name: str = "out"

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        if self.hidden:
            x = nn.relu(nn.Dense(self.hidden, name=self.hidden_name)(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, name=self.out_name)(x)
