"""Multimodal Transformer (MulT): crossmodal attention from every modality to every other one.

Source: Y.-H. H. Tsai, S. Bai, P. P. Liang, J. Z. Kolter, L.-P. Morency, R. Salakhutdinov,
"Multimodal Transformer for Unaligned Multimodal Language Sequences", ACL 2019 (the "MulT"
baseline of S000 §3).

For every target modality α and every source β ≠ α a crossmodal transformer CM_{β→α} of
``layers`` blocks lets α's sequence query β's (paper Eq. 4, pre-LayerNorm):

    Z  = Conv1D_k=1(X_α) + PE                   [B, T_α, width]   (likewise X_β -> [B, T_β, width])
    Z <- Z + MHA(LN(Z), LN(X_β))                queries from α, keys/values from β
    Z <- Z + FFN(LN(Z))                         FFN: width -> 4 width -> width, ReLU

The outputs of CM_{β→α} over all β are concatenated ([B, T_α, (M-1) width]) and passed through
``self_layers`` self-attention blocks of the same form; the last valid step of each target is
kept and the targets are concatenated: out [B, M (M-1) width]. The attention steps go through
:class:`mmer_jax.models.attention.MultiHeadAttention`, i.e. the project's attention op, so
``implementation`` selects XLA, the Pallas kernel or its interpreter, with separate query and
key padding masks.

Inputs (a decision of this implementation): ``feats`` maps names to vectors [B, D_m] — what
S001/S003 and the quickstart hand a fusion — or to sequences [B, T_m, D_m] with ``masks[name]``
[B, T_m] (True = valid; all-valid when absent). A vector is a length-1 sequence: its crossmodal
attention then has one key, so the softmax weight is 1 and CM_{β→α} reduces to a gated residual
mix of a projection of β into α; the full crossmodal alignment the paper is about needs
sequences. Padded steps are never keys, their rows are zeroed, and the pooled state is the last
valid step, so the output does not depend on padding. With one modality there is no other
source, and the model is MulT's self-attention path alone (the modality attends to itself).
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from mmer_jax.models.attention import MultiHeadAttention
from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.registry import FUSIONS


def sinusoidal_positions(length: int, width: int) -> np.ndarray:
    """Transformer sinusoidal position embeddings [length, width] (float32; width even or odd)."""
    pos = np.arange(length)[:, None].astype(np.float64)
    i = np.arange((width + 1) // 2)[None, :]
    angle = pos / np.power(10000.0, 2 * i / max(width, 1))
    out = np.zeros((length, 2 * angle.shape[1]), np.float64)
    out[:, 0::2], out[:, 1::2] = np.sin(angle), np.cos(angle)
    return out[:, :width].astype(np.float32)


class CrossmodalBlock(nn.Module):
    """One pre-LN transformer block: x [B, Tq, W] attends to y [B, Tk, W] (y=None: to itself).

    Attributes:
      num_heads: attention heads (``width`` divisible by it).
      dropout: on the attention and FFN outputs before each residual sum.
      implementation: of the attention op ("xla" | "pallas" | "interpret" | ...).
    """

    num_heads: int
    dropout: float = 0.0
    implementation: str = "xla"

    @nn.compact
    def __call__(self, x, x_mask, y=None, y_mask=None, *, train: bool):
        """x [B, Tq, W], x_mask [B, Tq] bool, y [B, Tk, W], y_mask [B, Tk] -> [B, Tq, W]."""
        w = x.shape[-1]
        q = nn.LayerNorm(name="ln_q")(x)
        kv, kv_mask = (q, x_mask) if y is None else (nn.LayerNorm(name="ln_kv")(y), y_mask)
        a = MultiHeadAttention(self.num_heads, implementation=self.implementation, name="mha")(
            q, kv, q_mask=x_mask, kv_mask=kv_mask, train=train)
        x = x + nn.Dropout(self.dropout)(a, deterministic=not train)
        f = nn.Dense(4 * w, name="ffn_in")(nn.LayerNorm(name="ln_ffn")(x))
        f = nn.Dense(w, name="ffn_out")(nn.relu(f))
        x = x + nn.Dropout(self.dropout)(f, deterministic=not train)
        return jnp.where(x_mask[..., None], x, 0.0)


def as_sequences(feats: dict, masks: Optional[dict], names: Sequence[str], fusion: str):
    """Vectors [B, D] become length-1 sequences; masks default to all-valid.

    Args:
      feats: name -> [B, D_m] or [B, T_m, D_m].
      masks: name -> [B, T_m] bool (or None / missing entries: all valid).
      names: the names to convert, in order.
      fusion: the calling fusion's name, for error messages.

    Returns:
      ({name: [B, T_m, D_m]}, {name: [B, T_m] bool}).

    Raises:
      ValueError: a feature that is neither [B, D] nor [B, T, D], or a mask whose shape is not
        its sequence's [B, T].
    """
    masks = masks or {}
    seqs, valid = {}, {}
    for m in names:
        x = feats[m]
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3:
            raise ValueError(f"{fusion} fusion takes [B, D] or [B, T, D] features, got {m}: "
                             f"{feats[m].shape}")
        mask = masks.get(m)
        mask = jnp.ones(x.shape[:2], bool) if mask is None else jnp.asarray(mask, bool)
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask of {m} has shape {mask.shape}, its sequence {x.shape}")
        seqs[m], valid[m] = x, mask
    return seqs, valid


@FUSIONS.register("mult")
class MulTFusion(nn.Module):
    """dict of [B, D_m] vectors or [B, T_m, D_m] sequences (+ ``masks``) -> [B, M (M-1) width]
    (one modality: [B, width]).

    Attributes:
      width: common model width d (the paper's 30-40 per modality; 32 here).
      num_heads: attention heads; ``width`` must be divisible by it.
      layers: blocks per crossmodal transformer CM_{β→α}.
      self_layers: self-attention blocks over each target's concatenated crossmodal outputs.
      dropout: on attention/FFN outputs and on the embedded inputs.
      implementation: of the attention op: "auto" | "xla" | "pallas" | "cudnn" | "interpret"
        (``mmer_jax.models.ops.ATTENTION_IMPLEMENTATIONS``).
      order: the modality order, which fixes the order of the output's blocks (the system's,
        from its config; () = sorted names), see :mod:`mmer_jax.models.fusion.contract`.

    Raises:
      ValueError: (on call) a feature that is neither [B, D] nor [B, T, D], or a mask whose
        shape is not its sequence's [B, T].
    """

    width: int = 32
    num_heads: int = 4
    layers: int = 2
    self_layers: int = 1
    dropout: float = 0.1
    implementation: str = "xla"
    order: tuple[str, ...] = ()

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool,
                 masks: Optional[dict[str, jnp.ndarray]] = None) -> jnp.ndarray:
        names = fusion_order(feats, self.order, "mult")
        raw, valid = as_sequences(feats, masks, names, "mult")  # a vector: a length-1 sequence
        seqs = {}
        for m in names:
            x, mask = raw[m], valid[m]
            z = nn.Dense(self.width, name=f"embed_{m}")(x)  # Conv1D with kernel 1
            z = z + jnp.asarray(sinusoidal_positions(x.shape[1], self.width), z.dtype)
            z = nn.Dropout(self.dropout)(z, deterministic=not train)
            seqs[m] = jnp.where(mask[..., None], z, 0.0)
        outs = []
        for a in names:
            sources = [b for b in names if b != a] or [a]
            streams = []
            for b in sources:
                z = seqs[a]
                for i in range(self.layers):
                    z = CrossmodalBlock(self.num_heads, self.dropout, self.implementation,
                                        name=f"cm_{b}_to_{a}_{i}")(
                        z, valid[a], None if b == a else seqs[b], valid[b], train=train)
                streams.append(z)
            h = jnp.concatenate(streams, axis=-1)  # [B, T_a, len(sources) width]
            for i in range(self.self_layers):
                h = CrossmodalBlock(self.num_heads, self.dropout, self.implementation,
                                    name=f"self_{a}_{i}")(h, valid[a], train=train)
            h = nn.LayerNorm(name=f"ln_out_{a}")(h)
            last = h.shape[1] - 1 - jnp.argmax(valid[a][:, ::-1], axis=1)  # [B] last valid
            outs.append(jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0])
        return jnp.concatenate(outs, axis=-1)
