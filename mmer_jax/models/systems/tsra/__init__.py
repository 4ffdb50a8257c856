"""TSRA: three representation spaces, four weighted losses, a stacked-LSTM recogniser.

Source: S000 §3.2 (the survey's summary of S. Zhang's game-scene model; reported on GMSA, which
is not available). The survey gives the outline only: a vector per modality (two-layer LSTMs over
the audio and visual feature sequences, the last hidden state through a fully connected layer),
three representation spaces, four losses combined with weights, and a stacked LSTM that
recognises the emotion from the fused data. What is ours (the closest faithful reading, in the
shared/private-subspace style the outline describes):

* **modality vector** ``u_m`` [B, dim]: ``audio`` and the feature streams (``text_feat``,
  ``audio_feat``, ``vision_feat``): a Dense projection per step, a 2-layer LSTM, the last valid
  state; ``frames``: a small CNN per frame (:class:`~mmer_jax.models.encoders.vision.FrameCNN`)
  then the same 2-layer LSTM; ``text``: the registered ``bilstm`` token encoder. Then the fully
  connected layer and a LayerNorm.
* **three spaces**: the *shared* space, one projector for every modality (``sigmoid(Dense)``), so
  that what the modalities have in common lands in one place; the *private* space, one projector
  per modality; the *fused* space: the state of the stacked LSTM (``recognizer_layers`` layers)
  run over the sequence [shared_1..M, private_1..M] of the 2M space vectors.
* **four losses**: the task loss (the harness's cross-entropy, or L1/MSE for a 1-output
  regression build) plus, in ``aux["loss_terms"]`` (:mod:`mmer_jax.models.systems.tsra.losses`),
  ``similarity`` (MSE, or CMD, between the shared vectors of every two modalities), ``difference``
  (soft orthogonality of shared vs private and private vs private) and ``reconstruction`` (a
  decoder per modality maps shared + private back to ``u_m``; ``u_m`` is held fixed by a
  stop-gradient in this term, so it trains the projectors and decoders to keep what ``u_m``
  holds and never the encoder to make ``u_m`` easy to rebuild, which from scratch collapses
  ``u_m`` to a constant before the task loss gets going). Each weight of 0
  leaves its term out; similarity needs two modalities or more.
* **head**: the fused vector through Dense + ReLU + dropout + Dense(num_classes).

Every loss term is averaged over the real rows only (``batch["weight"] > 0``); masks make padded
steps and padded rows irrelevant.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.encoders.vision import FrameCNN
from mmer_jax.models.layers import LSTM, last_valid
from mmer_jax.models.systems.tsra import losses as tsra_losses
from mmer_jax.registry import ENCODERS, register_system

TSRA_MODALITIES = ("text", "audio", "frames", "text_feat", "audio_feat", "vision_feat")
# Model-batch key of each modality's input (docs/contracts.md); its mask is "<key>_mask".
INPUT_KEY = {"text": "tokens", "audio": "audio", "frames": "frames", "text_feat": "text_feat",
             "audio_feat": "audio_feat", "vision_feat": "vision_feat"}


@dataclasses.dataclass(frozen=True)
class TSRAConfig:
    """``model`` section of TSRA (S000 §3.2; every default of the system lives here).

    Widths: ``hidden`` is the per-modality LSTM width, ``dim`` the width of the modality vectors
    and of the shared/private spaces, ``recognizer_hidden`` the stacked LSTM's. ``audio_pool``
    averages that many consecutive audio feature frames (masked) before the LSTM, a shorter
    recurrence for long clips. Loss weights ``similarity``, ``difference``, ``reconstruction``
    (>= 0; 0 switches the term off); ``similarity_kind`` "cmd" or "mse", ``cmd_order`` the highest
    central moment of CMD.
    """

    name: str = "tsra"
    modalities: tuple[str, ...] = ("text", "audio", "frames")
    hidden: int = 64
    dim: int = 64
    audio_pool: int = 1
    frame_widths: tuple[int, ...] = (16, 32, 64)
    frame_dim: int = 128
    text_embed: int = 64
    text_hidden: int = 32
    recognizer_hidden: int = 64
    recognizer_layers: int = 2
    head_hidden: int = 64
    dropout: float = 0.1
    similarity: float = 0.3
    difference: float = 0.3
    reconstruction: float = 1.0
    # "mse" by default: CMD's norms push with unit strength however close the moments are, and on
    # the generated corpus (encoders from scratch) CMD at weight 1 or 0.1 collapsed the modality
    # vectors to constants within one epoch (task loss stuck at chance); MSE at 0.3 did not.
    similarity_kind: str = "mse"
    cmd_order: int = 5

    def __post_init__(self):
        if not self.modalities or any(m not in TSRA_MODALITIES for m in self.modalities):
            raise ValueError(
                f"modalities={self.modalities} must be a non-empty subset of {TSRA_MODALITIES}"
            )
        if len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities={self.modalities} names a modality twice")
        for key in ("hidden", "dim", "audio_pool", "frame_dim", "text_embed", "text_hidden",
                    "recognizer_hidden", "recognizer_layers", "head_hidden", "cmd_order"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)} must be >= 1")
        for key in ("similarity", "difference", "reconstruction"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}={getattr(self, key)} must be >= 0 (0 turns it off)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        if self.similarity_kind not in ("cmd", "mse"):
            raise ValueError(f"similarity_kind={self.similarity_kind!r} must be 'cmd' or 'mse'")


def pool_steps(x: jnp.ndarray, mask: jnp.ndarray, k: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Masked mean of every k consecutive steps: x [B, T, D], mask [B, T] -> [B, ceil(T/k), D] and
    its mask (a window is valid when any of its steps is). Padded steps never enter a mean, so
    the result of the valid windows does not depend on what padding holds or how long it is."""
    if k == 1:
        return x, mask
    b, t, d = x.shape
    extra = -t % k
    x = jnp.pad(jnp.where(mask[..., None], x, 0.0), ((0, 0), (0, extra), (0, 0)))
    m = jnp.pad(mask, ((0, 0), (0, extra))).reshape(b, -1, k)
    total = x.reshape(b, -1, k, d).sum(axis=2)
    count = jnp.maximum(m.sum(axis=-1, keepdims=True), 1).astype(x.dtype)
    return total / count, m.any(axis=-1)


class SequenceVector(nn.Module):
    """[B, T, D] + mask [B, T] -> [B, hidden]: Dense projection per step, a 2-layer LSTM, the last
    valid state (S000 §3.2's audio/visual representation before its fully connected layer)."""

    hidden: int
    layers: int = 2

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        x = nn.Dense(self.hidden, name="proj")(x.astype(jnp.float32))  # [B, T, H]
        h = LSTM(self.hidden, num_layers=self.layers, name="lstm")(x, mask)  # [B, T, H]
        return last_valid(h, mask)


class TSRA(nn.Module):
    """Utterance batch -> (logits [B, C], aux).

    aux: ``feat_<modality>`` [B, dim] (the modality vectors), ``fused`` [B, recognizer_hidden]
    and ``loss_terms`` (a dict of float32 scalars, each already weighted; keys ``similarity``,
    ``difference``, ``reconstruction`` for the weights that are > 0).
    """

    cfg: TSRAConfig
    num_classes: int
    vocab_size: int = 0

    def _encode(self, m: str, batch: dict, train: bool) -> jnp.ndarray:
        c = self.cfg
        x, mask = batch[INPUT_KEY[m]], batch[f"{INPUT_KEY[m]}_mask"]
        if m == "text":
            enc = ENCODERS["bilstm"](self.vocab_size, c.text_embed, c.text_hidden, c.dropout,
                                     name="enc_text")
            return enc(x, mask, train=train)  # [B, 4 * text_hidden]
        if m == "frames":
            b, t = x.shape[:2]
            cnn = FrameCNN(tuple(c.frame_widths), "flatten", c.frame_dim, name="cnn_frames")
            x = cnn(x.reshape((b * t,) + x.shape[2:])).reshape(b, t, -1)  # [B, T, frame_dim]
        elif m == "audio":
            x, mask = pool_steps(x, mask, c.audio_pool)
        return SequenceVector(c.hidden, name=f"enc_{m}")(x, mask)  # [B, hidden]

    @nn.compact
    def __call__(self, batch: dict, *, train: bool):
        c = self.cfg
        mods = c.modalities
        some = batch[INPUT_KEY[mods[0]]]
        # Serving and init batches may carry no weight: then every row is real.
        weight = batch.get("weight", jnp.ones(some.shape[:1], jnp.float32))
        u = {}
        for m in mods:
            h = self._encode(m, batch, train)
            u[m] = nn.LayerNorm(name=f"norm_{m}")(nn.Dense(c.dim, name=f"fc_{m}")(h))
        shared_proj = nn.Dense(c.dim, name="shared")  # one projector: a space for every modality
        private_proj = {m: nn.Dense(c.dim, name=f"private_{m}") for m in mods}
        shared = [nn.sigmoid(shared_proj(u[m])) for m in mods]
        private = [nn.sigmoid(private_proj[m](u[m])) for m in mods]

        seq = jnp.stack(shared + private, axis=1)  # [B, 2M, dim]
        seq = nn.Dropout(c.dropout, deterministic=not train)(seq)
        full = jnp.ones(seq.shape[:2], bool)
        states = LSTM(c.recognizer_hidden, num_layers=c.recognizer_layers, name="recognizer")(
            seq, full)  # [B, 2M, H]
        fused = states[:, -1]  # [B, H]: the fused space
        z = nn.relu(nn.Dense(c.head_hidden, name="fc")(fused))
        z = nn.Dropout(c.dropout, deterministic=not train)(z)
        logits = nn.Dense(self.num_classes, name="head_out")(z)

        terms = {}
        if c.similarity and len(mods) > 1:
            terms["similarity"] = c.similarity * tsra_losses.similarity_loss(
                shared, weight, c.similarity_kind, c.cmd_order)
        if c.difference:
            terms["difference"] = c.difference * tsra_losses.difference_loss(
                shared, private, weight)
        if c.reconstruction:
            # The same spaces with u held fixed: reconstruction trains the projectors and the
            # decoders to keep what u holds, never the encoders to make u easy to rebuild (a
            # constant u is rebuilt perfectly; from scratch that collapse beats the task loss).
            fixed = {m: jax.lax.stop_gradient(u[m]) for m in mods}
            recon = [nn.Dense(c.dim, name=f"decoder_{m}")(
                nn.sigmoid(shared_proj(fixed[m])) + nn.sigmoid(private_proj[m](fixed[m])))
                for m in mods]
            targets = [fixed[m] for m in mods]
            terms["reconstruction"] = c.reconstruction * tsra_losses.reconstruction_loss(
                recon, targets, weight)
        aux = {f"feat_{m}": u[m] for m in mods}
        aux["fused"] = fused
        aux["loss_terms"] = {k: jnp.asarray(v, jnp.float32) for k, v in terms.items()}
        return logits, aux


@register_system("tsra", TSRAConfig)
def build(cfg: TSRAConfig, num_classes: int, vocab_size: int = 0) -> TSRA:
    """TSRA (S000 §3.2) for ``num_classes`` outputs (1 for the regression protocol).

    Raises:
      ValueError: ``text`` among the modalities with ``vocab_size`` < 1.
    """
    if "text" in cfg.modalities and vocab_size < 1:
        raise ValueError(f"modality 'text' needs a vocabulary: {vocab_size=}")
    return TSRA(cfg, num_classes, vocab_size)
