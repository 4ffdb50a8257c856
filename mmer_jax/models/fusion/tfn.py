"""Tensor fusion (TFN): the outer product of every modality's feature vector with a 1 appended.

Source: A. Zadeh, M. Chen, S. Poria, E. Cambria, L.-P. Morency, "Tensor Fusion Network for
Multimodal Sentiment Analysis", EMNLP 2017 (the "TFN" baseline of S000 §3).

    z_m = [h_m; 1]                              [B, d_m + 1] per modality m (a fixed 1, not learned)
    Z   = z_1 ⊗ z_2 ⊗ ... ⊗ z_M                 [B, (d_1+1) x ... x (d_M+1)]
    out = MLP(vec(Z))                           [B, features]

The appended 1 keeps every unimodal and every lower-order interaction term inside the product
(the paper's Eq. 1). The paper's "sentiment inference subnetwork" is a ReLU MLP on vec(Z); here
its first layer (``fuse``) and ``post_layers`` further layers of width ``features`` are the
fusion, and the system's own head classifies the result. The modality encoders play the role of
the paper's modality embedding subnetworks; ``project`` optionally adds a per-modality linear
projection before the product to bound vec(Z) when the encoder outputs are wide (the product's
size is prod(d_m + 1): two 64-d vectors give 4225, three give 274625).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.registry import FUSIONS


def tensor_product(vectors: Sequence[jnp.ndarray]) -> jnp.ndarray:
    """Flattened outer product of ``[v; 1]`` over ``vectors``.

    Args:
      vectors: M arrays [B, d_m] (any float dtype, all the same).

    Returns:
      [B, prod_m (d_m + 1)], row-major over the modality order given (the last modality's index
      varies fastest).

    Raises:
      ValueError: no vectors, or a vector that is not [B, d].
    """
    if not vectors:
        raise ValueError("tensor_product needs at least one modality vector")
    out = None
    for v in vectors:
        if v.ndim != 2:
            raise ValueError(f"tensor fusion takes [B, d] vectors, got shape {v.shape}")
        z = jnp.concatenate([v, jnp.ones(v.shape[:1] + (1,), v.dtype)], axis=-1)  # [B, d+1]
        out = z if out is None else (out[:, :, None] * z[:, None, :]).reshape(v.shape[0], -1)
    return out


def fused_dim(dims: Sequence[int]) -> int:
    """Width of :func:`tensor_product` for modality widths ``dims``: prod(d_m + 1)."""
    return math.prod(d + 1 for d in dims)


class PostFusionMLP(nn.Module):
    """``post_layers`` x (Dropout -> Dense(features) -> ReLU) on [B, features] (shared by TFN and
    LMF so that a full-rank LMF reproduces a TFN layer for layer)."""

    features: int
    post_layers: int
    dropout: float

    @nn.compact
    def __call__(self, h: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        for i in range(self.post_layers):
            h = nn.Dropout(self.dropout)(h, deterministic=not train)
            h = nn.relu(nn.Dense(self.features, name=f"post_{i}")(h))
        return h


@FUSIONS.register("tfn")
class TensorFusion(nn.Module):
    """dict of [B, D_m] features -> [B, features].

    ``fuse`` (a Dense of width ``features`` on the flattened product, [prod(d_m+1), features])
    -> ReLU -> ``post_layers`` x (Dropout, Dense(features), ReLU).

    Attributes:
      features: width of the fused layers and of the output (the paper uses 128).
      post_layers: Dense+ReLU layers after the fused one (the paper's subnetwork has two
        layers in all: ``fuse`` plus one).
      dropout: before every post-fusion layer.
      project: None uses the encoder vectors as they are (the paper's product); an int d
        projects every modality to d first (a Dense per modality, ``proj_<name>``).
      order: the modality order of the product (the system's, from its config; () = sorted
        names), see :mod:`mmer_jax.models.fusion.contract`.

    Raises:
      ValueError: (on call) a feature that is not [B, d].
    """

    features: int = 128
    post_layers: int = 1
    dropout: float = 0.0
    project: Optional[int] = None
    order: tuple[str, ...] = ()

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool,
                 masks: Optional[dict[str, jnp.ndarray]] = None) -> jnp.ndarray:
        del masks  # vectors: no steps to mask
        names = fusion_order(feats, self.order, "tfn")
        vs = [feats[m] for m in names]
        if self.project is not None:
            vs = [nn.Dense(self.project, name=f"proj_{m}")(v)
                  for m, v in zip(names, vs, strict=True)]
        z = tensor_product(vs)  # [B, prod(d_m + 1)]
        h = nn.relu(nn.Dense(self.features, name="fuse")(z))
        return PostFusionMLP(self.features, self.post_layers, self.dropout, name="post")(
            h, train=train)
