"""Bilinear shift fusion: non-verbal vectors shift the bridge (text) vector.

Source: MGMNet's bilinear fusion of non-verbal "shift vectors", S000 §3.3 (Y. Liu et al.); the
shift itself follows the Multimodal Adaptation Gate (W. Rahman et al., "Integrating Multimodal
Information in Large Pretrained Transformers", ACL 2020), where a gated non-verbal displacement
is added to the word representation with its norm bounded by the word vector's. This is the
coarse-grained half of MGMNet (:mod:`mmer_jax.models.systems.mgmnet`), registered on its own.

With b the bridge modality (:func:`mmer_jax.models.fusion.bridge.pick_bridge`: text when
present) and n each non-verbal modality:

    t   = Dense(v_b)                                        [B, width]
    s_n = P_n (tanh(U_n t) * tanh(V_n v_n))                 [B, width]  low-rank bilinear, rank R
    g_n = sigmoid(G_n [t; v_n])                             [B, width]  gate per dimension
    S   = sum_n g_n * s_n
    a   = min(softplus(c) * ||t|| / ||S||, 1)               [B, 1]      c learned, MAG's bound
    out = Dropout(LN(t + a S))                              [B, width]

Each entry of ``tanh(U t) * tanh(V v)`` is a product of a text feature and a non-verbal feature,
so ``s_n`` is a rank-R bilinear form in (t, v_n) (Kim et al.'s low-rank bilinear pooling) passed
through ``P_n``; with one modality there is nothing to shift by and ``out = Dropout(LN(t))``.

Inputs: ``feats`` maps names to vectors [B, D_m]; a sequence [B, T_m, D_m] is first reduced to
its masked mean over ``masks[name]`` (the coarse, utterance-level view), so padding is ignored.
"""

from __future__ import annotations

import math
from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.fusion.bridge import pick_bridge
from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.models.fusion.mult import as_sequences
from mmer_jax.models.layers import masked_mean
from mmer_jax.registry import FUSIONS


@FUSIONS.register("bilinear")
class BilinearShiftFusion(nn.Module):
    """dict of [B, D_m] vectors (or [B, T_m, D_m] sequences + ``masks``) -> [B, width].

    Attributes:
      width: output width (and the shift vectors').
      rank: rank R of each bilinear interaction.
      dropout: on the output.
      init_scale: initial value of the learned bound softplus(c) on ||a S|| / ||t||.
      order: the modality order (the system's, from its config; () = sorted names), see
        :mod:`mmer_jax.models.fusion.contract`.
      bridge: the bridge modality ("" = automatic, see ``pick_bridge``).

    Raises:
      ValueError: (on call) a bad feature or mask shape, or a ``bridge`` that is not among the
        features.
    """

    width: int = 32
    rank: int = 16
    dropout: float = 0.1
    init_scale: float = 0.5
    order: tuple[str, ...] = ()
    bridge: str = ""

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool,
                 masks: Optional[dict[str, jnp.ndarray]] = None) -> jnp.ndarray:
        names = fusion_order(feats, self.order, "bilinear")
        b = pick_bridge(names, self.bridge)
        seqs, valid = as_sequences(feats, masks, names, "bilinear")
        vec = {m: masked_mean(seqs[m], valid[m]) for m in names}  # [B, D_m]
        t = nn.Dense(self.width, name=f"embed_{b}")(vec[b])  # [B, width]
        partners = [m for m in names if m != b]
        if partners:
            shift = jnp.zeros_like(t)
            for n in partners:
                inter = (jnp.tanh(nn.Dense(self.rank, name=f"u_{n}")(t))
                         * jnp.tanh(nn.Dense(self.rank, name=f"v_{n}")(vec[n])))  # [B, R]
                s = nn.Dense(self.width, name=f"p_{n}")(inter)
                g = nn.sigmoid(nn.Dense(self.width, name=f"gate_{n}")(
                    jnp.concatenate([t, vec[n]], axis=-1)))
                shift = shift + g * s
            # inverse softplus, so that softplus(c) starts at init_scale
            c = self.param("scale", nn.initializers.constant(
                math.log(math.expm1(self.init_scale))), ())
            # MAG's bound: the shift never outweighs the text vector itself; the epsilons keep
            # the ratio and its gradient finite when a vector is zero.
            t_norm = jnp.sqrt(jnp.sum(t * t, -1, keepdims=True) + 1e-12)
            s_norm = jnp.sqrt(jnp.sum(shift * shift, -1, keepdims=True) + 1e-12)
            alpha = jnp.minimum(nn.softplus(c) * t_norm / s_norm, 1.0)
            t = t + alpha * shift
        out = nn.LayerNorm(name="ln_out")(t)
        return nn.Dropout(self.dropout)(out, deterministic=not train)
