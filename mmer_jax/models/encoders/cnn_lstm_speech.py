"""S004's speech branch: a 2-D CNN over the spectrogram, then an LSTM with recurrent dropout.

Source: seed paper S004 (``shared/papers/S004_*``, "speech feature extraction based on CNN-LSTM"):
"the convolution part is composed of two convolution layers and a maximum pooling layer ... 32 x 3,
and the activation function is a Rectified Linear Unit (ReLU). The output dimension of the LSTM
layer is set to 256, and the Recurrent Dropout parameter is set to 0.2."

Read here as: two 3 x 3 convolutions of 32 filters over (time, frequency), each followed by ReLU,
then one 2 x 2 max-pool (``pool_every_block`` pools after each convolution instead); the pooled
map's frequency x channel values of each frame are the LSTM's input. The paper does not name the
input features; log-mel / MFCC come from ``data.frontend``.

Recurrent dropout is Keras's (the paper's wording is Keras's ``recurrent_dropout``): one dropout
mask per sequence on the hidden state h_{t-1} before the recurrent matrix, the same mask at every
step, inverted scaling by 1 / (1 - p); inputs and the cell state are not dropped. Keras's default
implementation draws one such mask per gate; one mask shared by the four gates is used here
(Keras's ``implementation=2`` behaviour).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.encoders.conv1d_audio import downsample_mask
from mmer_jax.models.layers import lengths_from_mask
from mmer_jax.registry import ENCODERS

_NEG = -1e9  # fills padded frames before a max-pool so a window's maximum comes from valid ones


class RecurrentDropoutLSTM(nn.Module):
    """A one-directional LSTM over [B, T, D] with Keras-style recurrent dropout, length aware.

    Padded steps (mask False, at the end of each row) leave the state unchanged and output zeros,
    so the last state equals the state at each row's last valid step.

    Attributes:
      hidden: H, the state width.
      recurrent_dropout: probability p of dropping a unit of h_{t-1} (one mask per sequence).
    """

    hidden: int
    recurrent_dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool):
        """x [B, T, D] float, mask [B, T] bool -> (outputs [B, T, H], last state h [B, H]).

        Raises:
          ValueError: ``recurrent_dropout`` outside [0, 1).
        """
        if not 0.0 <= self.recurrent_dropout < 1.0:
            raise ValueError(f"recurrent_dropout={self.recurrent_dropout} must be in [0, 1)")
        b, _, d = x.shape
        h4 = 4 * self.hidden
        w_in = self.param("kernel", nn.initializers.glorot_uniform(), (d, h4))
        w_rec = self.param("recurrent_kernel", nn.initializers.orthogonal(), (self.hidden, h4))
        # Forget-gate bias 1 (Keras's unit_forget_bias): gates i, f, g, o.
        bias = self.param(
            "bias",
            lambda _, shape: jnp.zeros(shape).at[self.hidden: 2 * self.hidden].set(1.0),
            (h4,),
        )
        x = jnp.where(mask[..., None], x, 0.0)
        xw = (x @ w_in.astype(x.dtype) + bias.astype(x.dtype)).astype(jnp.float32)  # [B, T, 4H]
        keep = jnp.ones((b, self.hidden), jnp.float32)
        if train and self.recurrent_dropout > 0:
            p = self.recurrent_dropout
            bern = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - p, (b, self.hidden))
            keep = bern.astype(jnp.float32) / (1.0 - p)  # one mask for the whole sequence
        w_rec32 = w_rec.astype(jnp.float32)

        def step(carry, inp):
            c, h = carry
            xt, mt = inp  # [B, 4H], [B]
            z = xt + (h * keep) @ w_rec32
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            m = mt[:, None]
            c, h = jnp.where(m, c_new, c), jnp.where(m, h_new, h)
            return (c, h), jnp.where(m, h_new, 0.0)

        zeros = jnp.zeros((b, self.hidden), jnp.float32)
        (_, h_last), out = jax.lax.scan(
            step, (zeros, zeros), (jnp.swapaxes(xw, 0, 1), jnp.swapaxes(mask, 0, 1))
        )
        return jnp.swapaxes(out, 0, 1).astype(x.dtype), h_last.astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class CNNLSTMSpeechConfig:
    """Sizes of :class:`CNNLSTMSpeech` (defaults: S004's values)."""

    filters: int = 32
    kernel: int = 3
    num_convs: int = 2
    pool: int = 2  # max-pool window and stride over (time, frequency); 1 disables it
    pool_every_block: bool = False  # False: one pool after the last convolution (S004's text)
    hidden: int = 256  # LSTM output width
    recurrent_dropout: float = 0.2

    def __post_init__(self):
        for name in ("filters", "kernel", "num_convs", "pool", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not 0.0 <= self.recurrent_dropout < 1.0:
            raise ValueError(f"recurrent_dropout={self.recurrent_dropout} must be in [0, 1)")


@ENCODERS.register("cnn_lstm_speech")
class CNNLSTMSpeech(nn.Module):
    """S004's speech encoder: features [B, T, F] float + mask [B, T] bool -> [B, hidden].

    The features are a one-channel (time, frequency) image; padded frames are zeroed before each
    convolution and excluded from each max-pool, the mask is pooled with the time axis, and the
    LSTM's state at the last valid (pooled) frame is the utterance vector.
    """

    cfg: CNNLSTMSpeechConfig = CNNLSTMSpeechConfig()

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        c = self.cfg
        y = x[..., None]  # [B, T, F, 1]

        def pool(y, mask):
            y = jnp.where(mask[:, :, None, None], y, _NEG)
            y = nn.max_pool(y, (c.pool, c.pool), (c.pool, c.pool), padding="SAME")
            return y, downsample_mask(mask, c.pool, y.shape[1])

        for i in range(c.num_convs):
            y = jnp.where(mask[:, :, None, None], y, 0.0)  # padding must not reach valid frames
            y = nn.relu(nn.Conv(c.filters, (c.kernel, c.kernel), name=f"conv{i}")(y))
            if c.pool > 1 and (c.pool_every_block or i == c.num_convs - 1):
                y, mask = pool(y, mask)
        y = jnp.where(mask[:, :, None, None], y, 0.0)
        seq = y.reshape(y.shape[0], y.shape[1], -1)  # [B, T', F' * filters]
        _, h = RecurrentDropoutLSTM(c.hidden, c.recurrent_dropout, name="lstm")(
            seq, mask, train=train
        )
        # A row with no valid frame keeps the zero initial state.
        return jnp.where((lengths_from_mask(mask) > 0)[:, None], h, 0.0)
