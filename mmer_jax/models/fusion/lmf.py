"""Low-rank multimodal fusion (LMF): tensor fusion with the fusion weight in rank-r CP form.

Source: Z. Liu, Y. Shen, V. B. Lakshminarasimhan, P. P. Liang, A. Zadeh, L.-P. Morency,
"Efficient Low-rank Multimodal Fusion with Modality-Specific Factors", ACL 2018 (the "LMF"
baseline of S000 §3).

TFN's first fused layer is h = W · vec(z_1 ⊗ ... ⊗ z_M) + b with z_m = [h_m; 1]. LMF writes the
weight of every output unit k as a sum of r rank-one tensors, W_k = sum_i ⊗_m w_m^(i)[:, k], so
the product never has to be formed:

    a_m^(i) = z_m · W_m^(i)                     [B, features], W_m^(i) of shape [d_m + 1, features]
    h       = sum_i λ_i · prod_m a_m^(i) + b    [B, features]   (λ: the paper's rank weights)

and the rest is TFN's: ReLU, then ``post_layers`` x (Dropout, Dense, ReLU). Parameters grow as
r · sum_m (d_m + 1) · features instead of prod_m (d_m + 1) · features. At a rank at least
prod_{m < M}(d_m + 1) every TFN weight has an exact factorisation, so a full-rank LMF can
compute exactly what a TFN computes (``tests/models/test_fusions_baselines.py`` builds one).
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.models.fusion.tfn import PostFusionMLP
from mmer_jax.registry import FUSIONS


@FUSIONS.register("lmf")
class LowRankFusion(nn.Module):
    """dict of [B, D_m] features -> [B, features].

    Parameters: ``factor_<name>`` [rank, d_m + 1, features] per modality, ``rank_weight``
    [rank] (initialised to 1), ``bias`` [features], then the post-fusion layers (``post``).

    Attributes:
      features: width of the fused layer and of the output.
      rank: r, the number of rank-one terms (the paper finds 1-16 enough; 4 here).
      post_layers: Dense+ReLU layers after the fused one (as in :class:`TensorFusion`).
      dropout: before every post-fusion layer.
      project: None or a width every modality is first projected to (as in TFN).
      order: the modality order (the system's, from its config; () = sorted names), see
        :mod:`mmer_jax.models.fusion.contract`.

    Raises:
      ValueError: (on call) a feature that is not [B, d].
    """

    features: int = 128
    rank: int = 4
    post_layers: int = 1
    dropout: float = 0.0
    project: Optional[int] = None
    order: tuple[str, ...] = ()

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool,
                 masks: Optional[dict[str, jnp.ndarray]] = None) -> jnp.ndarray:
        del masks  # vectors: no steps to mask
        names = fusion_order(feats, self.order, "lmf")
        prod = None
        for m in names:
            v = feats[m]
            if v.ndim != 2:
                raise ValueError(f"low-rank fusion takes [B, d] vectors, got {m}: {v.shape}")
            if self.project is not None:
                v = nn.Dense(self.project, name=f"proj_{m}")(v)
            z = jnp.concatenate([v, jnp.ones(v.shape[:1] + (1,), v.dtype)], axis=-1)  # [B, d+1]
            factor = self.param(f"factor_{m}", nn.initializers.xavier_normal(),
                                (self.rank, z.shape[-1], self.features), jnp.float32)
            a = jnp.einsum("bd,rdf->brf", z, factor.astype(z.dtype))  # [B, r, features]
            prod = a if prod is None else prod * a
        lam = self.param("rank_weight", nn.initializers.ones, (self.rank,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        h = jnp.einsum("brf,r->bf", prod, lam.astype(prod.dtype)) + bias.astype(prod.dtype)
        return PostFusionMLP(self.features, self.post_layers, self.dropout, name="post")(
            nn.relu(h), train=train)
