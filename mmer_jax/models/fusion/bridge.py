"""Bridge fusion: one modality (text by default) queries every other one by cross-attention.

Source: MGMNet's Bridge Transformer, S000 §3.3 (Y. Liu et al.): text is the bridge through which
the model reads the speech and the facial expression. This is the fine-grained half of MGMNet
(:mod:`mmer_jax.models.systems.mgmnet`), registered on its own so that any system with a
``fusion`` field can use it.

With b the bridge modality and p each other ("partner") modality:

    X_m = Dense_m(feat_m) + PE                   [B, T_m, width]  (every modality)
    Z_p = X_b; Z_p <- Block(Z_p, X_p), layers    queries from b, keys/values from p [B, T_b, width]
    H   = LN(Dense([X_b; Z_p1; Z_p2; ...]))      [B, T_b, width]
    out = masked mean of H over b's valid steps  [B, width]

``Block`` is MulT's pre-LN crossmodal block (:class:`mmer_jax.models.fusion.mult.CrossmodalBlock`:
attention through the project's attention op with separate query and key padding masks, then a
feed-forward layer). Unlike MulT, attention runs only from the bridge to the partners (M - 1
crossmodal streams instead of M (M - 1)), and the output is the bridge's sequence pooled.

Which modality is the bridge (a decision of this implementation): ``bridge`` when set; else
the text ("text", "tokens", or a name ending in "_text" / "_tokens" such as S001/S003's
``feat_text``), else the first name in sorted order. Sorted, not the dict's order: a dict that
passes through ``jax.jit`` comes back with sorted keys, and the bridge names the parameters, so
the choice must not depend on how the dict was built (S003's frames + audio: audio is the
bridge). With no partner (one modality) the bridge attends to itself in ``layers``
self-attention blocks.

Inputs as :class:`mmer_jax.models.fusion.mult.MulTFusion` takes them: ``feats`` maps names to
vectors [B, D_m] (length-1 sequences: a partner's attention then has one key, so its softmax
weight is 1) or to sequences [B, T_m, D_m] with ``masks[name]`` [B, T_m] (True = valid;
all-valid when absent). Padded steps are never keys, are zeroed, and are left out of the mean,
so the output does not depend on padding.
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.models.fusion.mult import CrossmodalBlock, as_sequences, sinusoidal_positions
from mmer_jax.models.layers import masked_mean
from mmer_jax.registry import FUSIONS

BRIDGE_PREFERENCE = ("text", "tokens")


def pick_bridge(names: Sequence[str], bridge: str = "") -> str:
    """The bridge modality among ``names`` (in fusion order).

    Args:
      names: the modality names.
      bridge: an explicit choice ("" = automatic: "text", else "tokens", else a name ending in
        "_text", then "_tokens", else the first of ``sorted(names)``).

    Returns:
      One of ``names``.

    Raises:
      ValueError: ``names`` is empty, or ``bridge`` is set but not one of ``names``.
    """
    if not names:
        raise ValueError("a bridge fusion needs at least one modality")
    if bridge:
        if bridge not in names:
            raise ValueError(f"bridge={bridge!r} is not one of the modalities {list(names)}")
        return bridge
    for pref in BRIDGE_PREFERENCE:
        if pref in names:
            return pref
    for pref in BRIDGE_PREFERENCE:
        found = sorted(m for m in names if m.endswith("_" + pref))
        if found:
            return found[0]
    return sorted(names)[0]


@FUSIONS.register("bridge")
class BridgeFusion(nn.Module):
    """dict of [B, D_m] vectors or [B, T_m, D_m] sequences (+ ``masks``) -> [B, width].

    Attributes:
      width: common model width.
      num_heads: attention heads; ``width`` must be divisible by it.
      layers: crossmodal blocks per partner (self-attention blocks with no partner).
      dropout: on the embedded inputs and on attention/FFN outputs.
      implementation: of the attention op: "auto" | "xla" | "pallas" | "cudnn" | "interpret"
        (``mmer_jax.models.ops.ATTENTION_IMPLEMENTATIONS``).
      order: the modality order (the system's, from its config; () = sorted names), see
        :mod:`mmer_jax.models.fusion.contract`.
      bridge: the bridge modality ("" = automatic, see :func:`pick_bridge`).

    Raises:
      ValueError: (on call) a bad feature or mask shape (:func:`as_sequences`), or a ``bridge``
        that is not among the features.
    """

    width: int = 32
    num_heads: int = 4
    layers: int = 1
    dropout: float = 0.1
    implementation: str = "xla"
    order: tuple[str, ...] = ()
    bridge: str = ""

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool,
                 masks: Optional[dict[str, jnp.ndarray]] = None) -> jnp.ndarray:
        names = fusion_order(feats, self.order, "bridge")
        b = pick_bridge(names, self.bridge)
        seqs, valid = as_sequences(feats, masks, names, "bridge")
        emb = {}
        for m in names:
            x, mask = seqs[m], valid[m]
            z = nn.Dense(self.width, name=f"embed_{m}")(x)
            z = z + jnp.asarray(sinusoidal_positions(x.shape[1], self.width), z.dtype)
            z = nn.Dropout(self.dropout)(z, deterministic=not train)
            emb[m] = jnp.where(mask[..., None], z, 0.0)  # [B, T_m, width]
        partners = [m for m in names if m != b]
        streams = [emb[b]]
        for p in partners or [b]:
            z = emb[b]
            for i in range(self.layers):
                z = CrossmodalBlock(self.num_heads, self.dropout, self.implementation,
                                    name=f"bridge_{b}_to_{p}_{i}")(
                    z, valid[b], None if p == b else emb[p], valid[p], train=train)
            streams.append(z)
        h = nn.Dense(self.width, name="mix")(jnp.concatenate(streams, axis=-1))
        h = nn.LayerNorm(name="ln_out")(h)  # [B, T_b, width]
        return masked_mean(h, valid[b])
