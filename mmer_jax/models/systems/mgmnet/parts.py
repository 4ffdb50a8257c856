"""MGMNet's parts (S000 §3.3): per-utterance sequence encoders and the variational bottleneck.

The system (:mod:`mmer_jax.models.systems.mgmnet`) needs each modality as a sequence, not a
pooled vector, because its bridge fusion lets text tokens attend to audio frames and video
frames. The encoders here are small and from scratch (the paper uses pretrained features):

- :class:`TokenSequence`: tokens [N, L] -> [N, L, width] (embedding, a width-3 convolution);
- :class:`AudioSequence`: log-mel [N, Ta, F] -> [N, ceil(Ta / pool), width] (masked mean over
  windows of ``pool`` frames, a projection, a width-3 convolution);
- :class:`FrameSequence`: frames [N, Tv, H, W, C] -> [N, Tv, width] (a CNN per frame).

Every encoder zeroes its padded steps and computes a valid step from valid inputs only (the
convolutions read zeros past the end, whatever the padding held), so its output does not depend
on padding. :func:`gaussian_kl` and :class:`VariationalBottleneck` give the information
bottleneck objective.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.encoders.vision import FrameCNN


def _zero_pads(x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    return jnp.where(mask[..., None], x, 0.0)


class TokenSequence(nn.Module):
    """Tokens [N, L] int32 + mask [N, L] bool -> ([N, L, width] float32, mask [N, L]).

    Attributes:
      vocab_size: embedding rows (id 0 is padding).
      embed_dim: embedding width.
      width: output width.
      dropout: on the embeddings.
    """

    vocab_size: int
    embed_dim: int = 64
    width: int = 64
    dropout: float = 0.0

    @nn.compact
    def __call__(self, tokens, mask, *, train: bool):
        """Embedding, then a width-3 convolution (local word context), ReLU; pads zeroed."""
        mask = jnp.asarray(mask, bool)
        x = nn.Embed(max(self.vocab_size, 1), self.embed_dim, name="embed")(tokens)
        x = _zero_pads(nn.Dropout(self.dropout)(x, deterministic=not train), mask)
        x = nn.relu(nn.Conv(self.width, (3,), padding="SAME", name="conv")(x))
        return _zero_pads(x, mask), mask


def pool_time(x: jnp.ndarray, mask: jnp.ndarray, pool: int):
    """Masked mean over consecutive windows of ``pool`` steps.

    Args:
      x: [N, T, F] float.
      mask: [N, T] bool.
      pool: window length (>= 1); T is padded up to a multiple of it.

    Returns:
      ([N, ceil(T / pool), F] with zeros in windows without a valid step, [N, ceil(T / pool)]
      bool: the window holds a valid step). Windows start at step 0, so steps added past the
      end never join a window with a valid step's neighbours in a different way.

    Raises:
      ValueError: ``pool`` < 1.
    """
    if pool < 1:
        raise ValueError(f"{pool=} must be >= 1")
    n, t, f = x.shape
    out_t = -(-t // pool)
    pad = out_t * pool - t
    m = jnp.pad(mask.astype(x.dtype), ((0, 0), (0, pad)))
    xs = jnp.pad(jnp.where(mask[..., None], x, 0.0), ((0, 0), (0, pad), (0, 0)))
    total = (xs * m[..., None]).reshape(n, out_t, pool, f).sum(axis=2)
    count = m.reshape(n, out_t, pool).sum(axis=2)
    return total / jnp.maximum(count, 1.0)[..., None], count > 0


class AudioSequence(nn.Module):
    """Audio features [N, Ta, F] + mask [N, Ta] -> ([N, ceil(Ta / pool), width], its mask).

    Attributes:
      width: output width.
      pool: frames averaged into one step (shorter sequences for the attention).
    """

    width: int = 64
    pool: int = 4

    @nn.compact
    def __call__(self, x, mask, *, train: bool):
        """Window means, a projection and a width-3 convolution (ReLU each); pads zeroed."""
        del train
        x, mask = pool_time(x, jnp.asarray(mask, bool), self.pool)
        # Per-utterance feature normalisation would need statistics; a LayerNorm over the mel
        # bins of each step is padding-free and keeps the projection's input scale stable.
        x = _zero_pads(nn.LayerNorm(name="ln_in")(x), mask)
        x = _zero_pads(nn.relu(nn.Dense(self.width, name="proj")(x)), mask)
        x = nn.relu(nn.Conv(self.width, (3,), padding="SAME", name="conv")(x))
        return _zero_pads(x, mask), mask


class FrameSequence(nn.Module):
    """Frames [N, Tv, H, W, C] + mask [N, Tv] -> ([N, Tv, width], mask).

    Attributes:
      widths: channels of the per-frame CNN's strided blocks.
      width: output width (the CNN's flattened-feature projection).
    """

    widths: tuple = (16, 32)
    width: int = 64

    @nn.compact
    def __call__(self, frames, mask, *, train: bool):
        """A shared CNN per frame (GroupNorm, no batch statistics: padding-free); pads zeroed."""
        del train
        mask = jnp.asarray(mask, bool)
        n, t = frames.shape[:2]
        flat = frames.reshape((n * t,) + frames.shape[2:])
        per = FrameCNN(tuple(self.widths), "flatten", self.width, name="cnn")(flat)
        return _zero_pads(per.reshape(n, t, -1), mask), mask


def gaussian_kl(mu: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, summed over the last axis.

    Args:
      mu, logvar: [..., Z] float (the same shape).

    Returns:
      [...] float32, >= 0; 0 exactly where mu = 0 and logvar = 0.
    """
    mu, logvar = jnp.asarray(mu, jnp.float32), jnp.asarray(logvar, jnp.float32)
    return 0.5 * jnp.sum(jnp.square(mu) + jnp.exp(logvar) - 1.0 - logvar, axis=-1)


class VariationalBottleneck(nn.Module):
    """h [..., D] -> (z, mu, logvar), each [..., dim]: a Gaussian encoder q(z | h).

    Training draws z = mu + exp(logvar / 2) * eps with eps ~ N(0, I) from the ``"dropout"`` rng
    stream (the only stream the train step provides); evaluation returns z = mu.

    Attributes:
      dim: bottleneck width Z.
      max_logvar: |logvar| bound (tanh-scaled), so exp(logvar) cannot overflow early in training.
    """

    dim: int = 32
    max_logvar: float = 8.0

    @nn.compact
    def __call__(self, h, *, train: bool):
        """Returns (z, mu, logvar)."""
        mu = nn.Dense(self.dim, name="mu")(h)
        raw = nn.Dense(self.dim, name="logvar", kernel_init=nn.initializers.zeros)(h)
        logvar = self.max_logvar * jnp.tanh(raw / self.max_logvar)
        if not train:
            return mu, mu, logvar
        eps = jax.random.normal(self.make_rng("dropout"), mu.shape, mu.dtype)
        return mu + jnp.exp(0.5 * logvar) * eps, mu, logvar
