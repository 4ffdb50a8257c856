"""Small building blocks shared by encoders: masked pooling and length-aware recurrent layers."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def lengths_from_mask(mask: jnp.ndarray) -> jnp.ndarray:
    """[B, T] bool -> [B] int32 number of valid steps."""
    return jnp.sum(mask.astype(jnp.int32), axis=-1)


def masked_mean(x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Mean over axis 1 of x [B, T, D] counting only positions where mask [B, T] is True.

    A row with no valid step pools to zeros (not NaN), so an all-padding example is harmless.
    """
    m = mask.astype(x.dtype)[..., None]  # [B, T, 1]
    total = jnp.sum(x * m, axis=1)
    count = jnp.maximum(jnp.sum(m, axis=1), 1.0)
    return total / count


def masked_max(x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Max over axis 1 of x [B, T, D] over valid positions; zeros for an empty row."""
    neg = jnp.finfo(x.dtype).min
    y = jnp.max(jnp.where(mask[..., None], x, neg), axis=1)
    return jnp.where(jnp.any(mask, axis=1)[:, None], y, 0.0)


def last_valid(x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """x [B, T, D] -> the vector at the last valid step of each row [B, D]."""
    idx = jnp.maximum(lengths_from_mask(mask) - 1, 0)
    return jnp.take_along_axis(x, idx[:, None, None], axis=1)[:, 0]


def pytorch_lstm_inits(hidden: int) -> dict:
    """PyTorch's ``nn.LSTM`` initialisation for a flax LSTM cell: every weight U(-k, k) with
    k = 1/sqrt(hidden). PyTorch adds two such biases (b_ih + b_hh); one bias U(-k*sqrt(2),
    k*sqrt(2)) has the same variance."""
    k = 1.0 / float(hidden) ** 0.5
    return dict(kernel_init=symmetric_uniform(k), recurrent_kernel_init=symmetric_uniform(k),
                bias_init=symmetric_uniform(k * 2.0**0.5))


def symmetric_uniform(bound: float):
    """An initializer drawing U(-bound, bound)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class LSTM(nn.Module):
    """A (bi)directional LSTM over [B, T, D] that ignores steps past each row's length.

    Padded outputs are zeroed so later layers never see values computed from padding.

    Attributes:
      init_scheme: "flax" (lecun-normal input weights, orthogonal recurrent weights, zero bias) or
        "pytorch" (:func:`pytorch_lstm_inits`, for systems written in PyTorch).
    """

    hidden: int
    bidirectional: bool = False
    num_layers: int = 1
    init_scheme: str = "flax"

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        if self.init_scheme not in ("flax", "pytorch"):
            raise ValueError(f"init_scheme={self.init_scheme!r} must be 'flax' or 'pytorch'")
        inits = pytorch_lstm_inits(self.hidden) if self.init_scheme == "pytorch" else {}
        lengths = lengths_from_mask(mask)
        x = jnp.where(mask[..., None], x, 0.0)
        for i in range(self.num_layers):
            fwd = nn.RNN(nn.OptimizedLSTMCell(self.hidden, **inits), name=f"fwd_{i}")
            if self.bidirectional:
                bwd = nn.RNN(nn.OptimizedLSTMCell(self.hidden, **inits), name=f"bwd_{i}")
                x = nn.Bidirectional(fwd, bwd, name=f"bi_{i}")(x, seq_lengths=lengths)
            else:
                x = fwd(x, seq_lengths=lengths)
            x = jnp.where(mask[..., None], x, 0.0)  # [B, T, H or 2H]
        return x


def on_subsequence(fn, x: jnp.ndarray, sel: jnp.ndarray) -> jnp.ndarray:
    """Runs a sequence layer over only the selected steps of each row, in order.

    x [B, U, D], sel [B, U] bool; ``fn(xs, mask)`` maps [B, U, D] steps packed to the front and
    their [B, U] bool mask to [B, U, H]. Returns [B, U, H]: the outputs at the selected positions,
    zeros elsewhere. The selected steps are gathered to the front (stable sort), run, and scattered
    back, so a speaker's context skips the other speakers' turns.
    """
    order = jnp.argsort(~sel, axis=1, stable=True)  # selected steps first, order kept
    xs = jnp.take_along_axis(x, order[..., None], axis=1)
    packed = jnp.arange(sel.shape[1])[None, :] < jnp.sum(sel, axis=1, keepdims=True)
    ys = fn(xs, packed)
    y = jnp.take_along_axis(ys, jnp.argsort(order, axis=1)[..., None], axis=1)
    return jnp.where(sel[..., None], y, 0.0)


class AttentionPool(nn.Module):
    """Additive attention pooling over valid steps: softmax(w·tanh(Wx)) weighted sum."""

    hidden: int = 128

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        score = nn.Dense(1)(jnp.tanh(nn.Dense(self.hidden)(x)))[..., 0]  # [B, T]
        score = jnp.where(mask, score, -1e30)
        w = jnp.exp(score - jnp.max(score, axis=1, keepdims=True)) * mask
        w = w / jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1e-9)
        return jnp.einsum("bt,btd->bd", w, x)


def in_scope_of(parent: nn.Module, part: nn.Module) -> nn.Module:
    """Makes ``part`` (a module created in ``parent``'s compact method) create its sub-modules and
    parameters directly in ``parent``'s scope, as if ``parent`` had created them itself.

    Systems assembled from registered parts use it to keep the parameter tree (and so old
    checkpoints and the initialisation of a seed) of the systems written before the registries.
    """
    nn.share_scope(part, parent)
    return part
