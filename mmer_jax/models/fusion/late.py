"""Late (decision-level) fusion: one scorer per modality, scores combined with learned weights.

The classic late-fusion baseline of S000 §3 (e.g. the "late-fusion LSTM" baselines of the TFN and
MulT papers: unimodal models whose decisions are combined, no feature-level interaction):

    s_m = Dense_m(h_m)                          [B, features]  from modality m alone
    α   = softmax(w)                            [M]            learned, initialised uniform
    out = sum_m α_m s_m                         [B, features]

Each s_m depends on its own modality only, and modalities meet only in the weighted sum. Under
a linear classification head W (S001's, and the quickstart's final layer) the logits are
``W out + b = sum_m α_m (W s_m) + b``: a weighted sum of per-modality linear classifiers'
scores, i.e. late fusion of class scores exactly. A head with a hidden layer (S003's FC -> ReLU
-> FC) mixes the weighted scores once more before classifying, so there the combination is
late in the features but not strictly at the logits. The unimodal scorers are trained jointly
through the fused loss (no separate per-modality losses).
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.registry import FUSIONS


@FUSIONS.register("late")
class LateFusion(nn.Module):
    """dict of [B, D_m] features -> [B, features].

    Parameters: ``score_<name>`` (Dense D_m -> features) per modality and ``modality_logits``
    [M] (softmax -> the combination weights α, in modality order).

    Attributes:
      features: width of every modality's score vector (and of the output).
      dropout: on each modality's features before its scorer.
      order: the modality order of ``modality_logits`` (the system's, from its config;
        () = sorted names), see :mod:`mmer_jax.models.fusion.contract`.

    Raises:
      ValueError: (on call) a feature that is not [B, d].
    """

    features: int = 64
    dropout: float = 0.0
    order: tuple[str, ...] = ()

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool,
                 masks: Optional[dict[str, jnp.ndarray]] = None) -> jnp.ndarray:
        del masks  # vectors: no steps to mask
        names = fusion_order(feats, self.order, "late")
        scores = []
        for m in names:
            if feats[m].ndim != 2:
                raise ValueError(f"late fusion takes [B, d] vectors, got {m}: {feats[m].shape}")
            h = nn.Dropout(self.dropout)(feats[m], deterministic=not train)
            scores.append(nn.Dense(self.features, name=f"score_{m}")(h))
        s = jnp.stack(scores, axis=1)  # [B, M, features]
        w = self.param("modality_logits", nn.initializers.zeros, (len(names),), jnp.float32)
        alpha = jax.nn.softmax(w).astype(s.dtype)  # [M]
        return jnp.einsum("bmf,m->bf", s, alpha)
