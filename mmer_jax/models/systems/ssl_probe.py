"""``ssl_probe``: a small head over a frozen pretrained speech encoder's layers.

The SUPERB / EmoBox probing protocol (Yang et al. 2021, "SUPERB: Speech processing Universal
PERformance Benchmark"; Ma et al. 2024, "EmoBox"): every hidden state of the encoder (read from
the encoder-feature cache, modality ``encoder_feat`` [B, T, L * D]) is normalised over its
channels (``layer_norm``; s3prl's default), the states are summed with learned softmax weights
(one logit per state, initialised equal), projected (Dense ``proj_dim`` + ReLU), pooled over the
valid frames (mean and standard deviation, attentive statistics, or mean) and classified by a
one-hidden-layer MLP. The softmax layer weights are the probe's answer to "which layers carry
emotion": :func:`summarize` reads them off the selected checkpoint for the run's results.

With ``data.encoder_store = "pooled"`` the cache holds per-state mean and standard deviation
[1, L, 2D] instead of frames: the weighted sum then runs over those statistics (exact for the
mean, a weighted sum of per-state deviations for the second half) and pooling is skipped
(``input = "pooled"``).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.registry import register_system

STREAM = "encoder_feat"


@dataclasses.dataclass(frozen=True)
class SSLProbeConfig:
    """``model`` section of ``ssl_probe``.

    Attributes:
      encoder_states: hidden states per frame in the stream (L = layers + 1); 0 is filled in
        from ``data.encoder``'s ``encoder.json`` when the config is loaded.
      input: "frames" or "pooled" (as ``data.encoder_store``).
      layer_norm: normalise each state over its channels (no affine) before the weighted sum.
      proj_dim: width of the projection after the weighted sum.
      pooling: "stats" (mean and standard deviation over valid frames), "attentive" (attention
        weights from a Dense(1) score, weighted mean and standard deviation) or "mean".
      hidden: width of the classifier's hidden layer.
      dropout: before the hidden layer and before the output.
    """

    name: str = "ssl_probe"
    modalities: tuple[str, ...] = (STREAM,)
    encoder_states: int = 0
    input: str = "frames"
    layer_norm: bool = True
    proj_dim: int = 256
    pooling: str = "stats"
    hidden: int = 256
    dropout: float = 0.2

    def __post_init__(self):
        if tuple(self.modalities) != (STREAM,):
            raise ValueError(f"modalities={self.modalities!r}: ssl_probe reads only {STREAM!r}")
        if self.encoder_states < 0:
            raise ValueError(f"encoder_states={self.encoder_states} must be >= 0 (0: from "
                             "data.encoder)")
        if self.input not in ("frames", "pooled"):
            raise ValueError(f"input={self.input!r} must be 'frames' or 'pooled'")
        if self.pooling not in ("stats", "attentive", "mean"):
            raise ValueError(f"pooling={self.pooling!r} must be 'stats', 'attentive' or 'mean'")
        for f in ("proj_dim", "hidden"):
            if getattr(self, f) <= 0:
                raise ValueError(f"{f}={getattr(self, f)} must be positive")


def _layer_norm(x: jnp.ndarray, eps: float = 1e-5) -> jnp.ndarray:
    mu = x.mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)


def _pool(x: jnp.ndarray, mask: jnp.ndarray, how: str, score=None) -> jnp.ndarray:
    """[B, T, D] over valid frames -> [B, D] (mean) or [B, 2D] (mean and standard deviation)."""
    m = mask.astype(x.dtype)[..., None]
    if how == "attentive":
        logits = jnp.where(mask, score[..., 0], -1e30)
        w = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(x.dtype)[..., None] * m
    else:
        w = m / jnp.maximum(m.sum(1, keepdims=True), 1.0)
    mean = (w * x).sum(1)
    if how == "mean":
        return mean
    var = (w * (x - mean[:, None]) ** 2).sum(1)
    return jnp.concatenate([mean, jnp.sqrt(var + 1e-6)], axis=-1)


class SSLProbe(nn.Module):
    """Utterance batch (``encoder_feat`` [B, T, L * D], ``encoder_feat_mask`` [B, T]) ->
    (logits [B, C], ``{"layer_weights": [L], "feat_encoder": [B, hidden]}``).

    Raises:
      ValueError: at trace time, the stream's width is not a multiple of ``encoder_states``.
    """

    cfg: SSLProbeConfig
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        c = self.cfg
        x, mask = batch[STREAM], batch[STREAM + "_mask"]
        b, t, width = x.shape
        if c.encoder_states <= 0 or width % c.encoder_states:
            raise ValueError(f"{STREAM} has {width} channels per frame, not a multiple of "
                             f"model.encoder_states={c.encoder_states}")
        x = x.reshape(b, t, c.encoder_states, width // c.encoder_states)  # [B, T, L, D]
        if c.layer_norm and c.input == "frames":
            x = _layer_norm(x)
        logits = self.param("layer_logits", nn.initializers.zeros, (c.encoder_states,))
        weights = jax.nn.softmax(logits)
        h = jnp.einsum("btld,l->btd", x, weights.astype(x.dtype))  # [B, T, D]
        if c.input == "pooled":
            u = h[:, 0]  # [B, 2D]: weighted per-state mean and standard deviation
        else:
            h = nn.relu(nn.Dense(c.proj_dim, name="proj")(h))
            score = nn.Dense(1, name="attention")(h) if c.pooling == "attentive" else None
            u = _pool(h, mask, c.pooling, score)
        u = nn.Dropout(c.dropout)(u, deterministic=not train)
        u = nn.relu(nn.Dense(c.hidden, name="hidden")(u))
        u = nn.Dropout(c.dropout)(u, deterministic=not train)
        out = nn.Dense(self.num_classes, name="head")(u)
        return out, {"layer_weights": weights, "feat_encoder": u}


def summarize(params) -> dict:
    """What a run reports of a trained probe: ``{"layer_weights": [L] softmax weights}``."""
    return {"layer_weights": [float(w) for w in jax.nn.softmax(params["layer_logits"])]}


@register_system("ssl_probe", SSLProbeConfig, summarize=summarize)
def build(cfg: SSLProbeConfig, num_classes: int, vocab_size: int = 0) -> SSLProbe:
    """The probe for ``num_classes`` outputs (``vocab_size`` unused)."""
    del vocab_size
    return SSLProbe(cfg, num_classes)

