"""Building blocks of the MI system (S000 §3.1): per-modality streams, segment pooling to a common
length, cross-modal dynamic convolution and residual gating. Assembled in
:mod:`mmer_jax.models.systems.mi`.

Every block takes and returns masks; padded positions are zeroed before anything mixes positions,
so their values never reach a valid position, and segments are cut from each row's own valid
length, so appending padding changes no output.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.vision import FrameCNN
from mmer_jax.models.layers import LSTM
from mmer_jax.models.ops import DYNAMIC_CONV_IMPLEMENTATIONS, lookup

# How a stream's low-level features are made, by input kind.
STREAM_KINDS = ("tokens", "audio", "frames", "features")


def segment_bounds(lengths: jnp.ndarray, segments: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """First and one-past-last valid-step rank of each segment, as adaptive pooling cuts them.

    Segment s of a row with L valid steps covers ranks [floor(s*L/S), floor((s+1)*L/S)), widened
    to one step when that is empty (L < S: steps repeat, so every segment of a non-empty row is
    valid and positions stay paired across modalities).

    Args:
      lengths: int [B] valid steps per row.
      segments: S >= 1.

    Returns:
      (start, end): int32 [B, S] each; end > start; both 0 and 1 for an empty row.
    """
    s = jnp.arange(segments, dtype=jnp.int32)[None, :]  # [1, S]
    n = lengths.astype(jnp.int32)[:, None]  # [B, 1]
    start = (s * n) // segments
    end = jnp.maximum(start + 1, ((s + 1) * n) // segments)
    return start, end


def segment_pool(x: jnp.ndarray, mask: jnp.ndarray,
                 segments: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Masked average pooling of x [B, T, D] into ``segments`` segments of its valid steps.

    Steps are ranked among the valid ones (the mask need not be a prefix), so the segments depend
    on the valid steps only, never on T. See :func:`segment_bounds` for the cut.

    Args:
      x: float [B, T, D].
      mask: bool [B, T].
      segments: S >= 1.

    Returns:
      (pooled [B, S, D] in x.dtype, zero for an empty row; segment mask bool [B, S], all True
      for a row with a valid step, all False otherwise).
    """
    x = jnp.where(mask[..., None], x, 0.0)
    rank = jnp.cumsum(mask.astype(jnp.int32), axis=1) - 1  # [B, T]: index among valid steps
    start, end = segment_bounds(jnp.sum(mask, axis=1), segments)
    member = (mask[:, None, :] & (rank[:, None, :] >= start[..., None])
              & (rank[:, None, :] < end[..., None]))  # [B, S, T]
    w = member.astype(x.dtype)
    count = jnp.sum(w, axis=-1, keepdims=True)  # [B, S, 1]
    pooled = jnp.einsum("bst,btd->bsd", w, x) / jnp.maximum(count, 1.0)
    return pooled, count[..., 0] > 0


class MIStream(nn.Module):
    """One modality: low-level features, a 1-D convolution, a BiLSTM -> [B, T', width] + mask.

    Low-level features by ``kind``: "tokens" int [B, L] -> a learned embedding; "audio" the
    log-mel/MFCC frames [B, Ta, F] as they are; "frames" [B, Tv, H, W, 3] -> a small per-frame CNN
    (:class:`mmer_jax.models.encoders.vision.FrameCNN`, GroupNorm, so no batch statistics);
    "features" pre-extracted [B, T, D] -> a Dense projection.

    The convolution (``conv_kernel`` taps, stride ``stride``, ReLU) has fixed padding
    ((K-1)//2 before, K//2 after), so output step j always reads inputs j*stride - (K-1)//2 ...,
    whatever T is; output j is valid where input j*stride is. The BiLSTM (``width``/2 per
    direction) adds context; its padded outputs are zero.

    Attributes:
      kind: one of ``STREAM_KINDS``.
      width: output width d (even).
      vocab_size: tokens only: embedding rows (0 = padding id).
      embed_dim: tokens only: embedding width.
      frame_widths: frames only: channels of the per-frame CNN's stride-2 blocks.
      conv_kernel: taps of the local convolution.
      stride: time stride of the local convolution.
      dropout: on the convolution's output in training.

    Raises:
      ValueError: unknown ``kind``, odd ``width``, or "tokens" with ``vocab_size`` < 2.
    """

    kind: str
    width: int
    vocab_size: int = 0
    embed_dim: int = 64
    frame_widths: tuple = (16, 32)
    conv_kernel: int = 3
    stride: int = 1
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *,
                 train: bool) -> tuple[jnp.ndarray, jnp.ndarray]:
        if self.kind not in STREAM_KINDS:
            raise ValueError(f"kind={self.kind!r} must be one of {STREAM_KINDS}")
        if self.width % 2:
            raise ValueError(f"width={self.width} must be even (two LSTM directions)")
        b, t = mask.shape
        if self.kind == "tokens":
            if self.vocab_size < 2:
                raise ValueError(f"vocab_size={self.vocab_size}: text needs a vocabulary")
            h = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(x)  # [B, L, E]
        elif self.kind == "frames":
            x = jnp.where(mask[:, :, None, None, None], x, 0.0)
            cnn = FrameCNN(tuple(self.frame_widths), "flatten", self.width, name="frame_cnn")
            h = cnn(x.reshape((b * t,) + x.shape[2:])).reshape(b, t, -1)  # [B, Tv, d]
        elif self.kind == "features":
            h = nn.Dense(self.width, name="proj")(x)  # [B, T, d]
        else:
            h = x  # [B, Ta, F]
        h = jnp.where(mask[..., None], h, 0.0)
        k = self.conv_kernel
        h = nn.Conv(self.width, (k,), strides=(self.stride,), padding=[((k - 1) // 2, k // 2)],
                    name="local_conv")(h)
        mask = mask[:, :: self.stride]  # [B, T'], T' = ceil(T / stride) = h.shape[1]
        h = nn.relu(jnp.where(mask[..., None], h, 0.0))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        h = LSTM(self.width // 2, bidirectional=True, name="bilstm")(h, mask)  # [B, T', d]
        return h, mask


class CrossModalDynamicConv(nn.Module):
    """Kernels predicted from one sequence, applied to another (or the same) one.

        logits[b, s] = Dense_{H*K}(src[b, s])                          -> [B, S, H, K]
        y[b, s]      = sum_k softmax_k(logits[b, s, h(c)])[k] * dst[b, s - (K-1)//2 + k]
        out[b, s]    = Dense_d(y[b, s]),  zero where dst_mask is False

    Both sequences have the same (segment) length S, so position s of the source decides how
    the target is mixed around its own position s (S000 §3.1's cross-modal dynamic convolution;
    with src = dst it is the intra-modal one).

    Attributes:
      num_heads: kernel heads H; the target's width must be divisible by it.
      kernel_size: taps K.
      implementation: "auto" | "xla" | "pallas" | "interpret"
        (``ops.DYNAMIC_CONV_IMPLEMENTATIONS``).

    Raises:
      ValueError: unknown ``implementation``; src and dst of different batch or length.
    """

    num_heads: int = 4
    kernel_size: int = 3
    implementation: str = "xla"

    @nn.compact
    def __call__(self, src: jnp.ndarray, dst: jnp.ndarray, dst_mask: jnp.ndarray) -> jnp.ndarray:
        op = lookup(DYNAMIC_CONV_IMPLEMENTATIONS, self.implementation)
        if src.shape[:2] != dst.shape[:2]:
            raise ValueError(f"src.shape={src.shape} and dst.shape={dst.shape} must share [B, S]")
        b, s, d = dst.shape
        logits = nn.Dense(self.num_heads * self.kernel_size, name="kernel")(src)
        logits = logits.reshape(b, s, self.num_heads, self.kernel_size)  # [B, S, H, K]
        y = op(jnp.where(dst_mask[..., None], dst, 0.0), logits, mask=dst_mask,
               padding="centered")  # [B, S, d]
        y = nn.Dense(d, name="out")(y)
        return jnp.where(dst_mask[..., None], y, 0.0)


class ResidualGate(nn.Module):
    """Residual gated fusion: base + sum_i g_i * r_i, one scalar gate per interaction.

        g_i = sigmoid(Dense_1^{(i)}([r_i; base]))      in [0, 1], per example
        z   = base + sum_i g_i * r_i

    Sigmoid gates (not a softmax) let interactions cooperate (several open) or compete (one
    open, the rest shut); a shut gate leaves the residual base.

    Attributes:
      names: one name per interaction (parameter names ``gate_<name>``).
    """

    names: Sequence[str]

    @nn.compact
    def __call__(self, base: jnp.ndarray,
                 interactions: Sequence[jnp.ndarray]) -> tuple[jnp.ndarray, jnp.ndarray]:
        """base [B, d], interactions: [B, d] each -> (z [B, d], gates [B, n] in [0, 1])."""
        gates = [nn.sigmoid(nn.Dense(1, name=f"gate_{n}")(jnp.concatenate([r, base], -1)))
                 for n, r in zip(self.names, interactions, strict=True)]  # [B, 1] each
        g = jnp.concatenate(gates, axis=-1)  # [B, n]
        z = base + jnp.einsum("bn,bnd->bd", g, jnp.stack(list(interactions), axis=1))
        return z, g

