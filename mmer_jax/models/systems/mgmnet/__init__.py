"""MGMNet: multi-granularity, multimodal dialogue emotion recognition (Y. Liu et al.).

Source: S000 §3.3 (the survey's summary of MGMNet; the survey gives no layer sizes, so the
defaults of :class:`MGMNetConfig` are small CPU-sized ones, and features are learned from scratch
instead of the paper's pretrained ones).

Our reading of the survey's four ingredients, per utterance (N = B x U utterances):

1. Fine grain, the Bridge Transformer (fusion ``bridge``,
   :class:`mmer_jax.models.fusion.bridge.BridgeFusion`): each modality is encoded as a sequence
   (:mod:`mmer_jax.models.systems.mgmnet.parts`: text tokens, audio frames pooled by ``audio_pool``,
   video frames); the text tokens are the queries of cross-attention to the audio frames and to
   the video frames (separate query and key padding masks, through the project's attention op,
   ``implementation`` = "xla" | "pallas" | "interpret" | ...); the result is pooled over the
   valid tokens: f [N, width].
2. Coarse grain, the bilinear shift (fusion ``bilinear``,
   :class:`mmer_jax.models.fusion.bilinear.BilinearShiftFusion`): the masked means of the audio
   and video sequences are the utterance-level non-verbal vectors; a low-rank bilinear form of
   (text, non-verbal) gives a gated "shift vector" added to the text vector, MAG-style:
   c [N, width].
3. Information bottleneck (TMIB, against unimodal bias): the fused h = ReLU(Dense([f; c])) is
   encoded as q(z | h) = N(mu, diag(sigma^2)); training samples z = mu + sigma * eps, evaluation
   uses z = mu; the loss adds ``ib_beta`` x KL(q(z | h) || N(0, I)), averaged over the real
   utterances (``weight > 0`` and ``utt_mask``), as ``aux["loss_terms"]["information_bottleneck"]``
   (absent when ``ib_beta`` = 0).
4. Dialogue context: a Bi-LSTM over the utterances' z (``utt_mask`` [B, U] masks padded
   utterances); the classifier reads [z; context] of each utterance. A dialogue batch (leading
   utterance axis, ``utt_mask``) gets logits [B, U, C]; an utterance batch is a one-utterance
   dialogue (logits [B, C]), so there the Bi-LSTM sees one step and adds no context.

Modalities: any non-empty subset of ("text", "audio", "frames"). Text is the bridge when present;
without text audio takes its place (the first name in sorted order,
:func:`mmer_jax.models.fusion.bridge.pick_bridge`), else frames. Text alone has no
partner: the bridge attends to itself (self-attention over the tokens) and the bilinear fusion
has nothing to shift by, so the model is text + bottleneck + context.

Padding invariance: padded tokens, audio frames and video frames are zeroed, never keys and left
out of every mean; padded utterances are masked in the Bi-LSTM, left out of the KL average and
their logits are zeroed.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.fusion.bilinear import BilinearShiftFusion
from mmer_jax.models.fusion.bridge import BridgeFusion
from mmer_jax.models.layers import LSTM, masked_mean
from mmer_jax.models.ops import ATTENTION_IMPLEMENTATIONS, lookup
from mmer_jax.models.systems.dialogue import as_dialogue, finish_logits
from mmer_jax.models.systems.mgmnet.parts import (
    AudioSequence,
    FrameSequence,
    TokenSequence,
    VariationalBottleneck,
    gaussian_kl,
)
from mmer_jax.registry import register_system

MGMNET_MODALITIES = ("text", "audio", "frames")
# Model-batch keys (docs/contracts.md).
_INPUT = {"text": ("tokens", "tokens_mask"), "audio": ("audio", "audio_mask"),
          "frames": ("frames", "frames_mask")}


@dataclasses.dataclass(frozen=True)
class MGMNetConfig:
    """``model`` section of MGMNet (every default of the system lives here).

    Attributes:
      modalities: a non-empty subset of ("text", "audio", "frames"), used in that order.
      width: width of every encoded sequence, of both fusions and of the fused vector.
      num_heads: attention heads of the bridge (``width`` divisible by it).
      bridge_layers: crossmodal blocks per bridge partner.
      rank: rank of each bilinear (text, non-verbal) interaction.
      embed_dim: token embedding width.
      audio_pool: audio frames averaged into one attention step.
      frame_widths: channels of the per-frame CNN.
      ib_dim: bottleneck width Z.
      ib_beta: weight of the KL term (0: no bottleneck loss; z is still sampled in training).
      context_hidden: Bi-LSTM units per direction over the utterances.
      head_hidden: hidden width of the classifier (0: one linear layer).
      dropout: on the token embeddings, inside the fusions and before the classifier.
      implementation: of the attention op (``mmer_jax.models.ops.ATTENTION_IMPLEMENTATIONS``).

    Raises:
      ValueError: (on construction) bad modalities, a width not divisible by ``num_heads``, a
        non-positive size, a negative ``ib_beta`` or an unknown ``implementation``.
    """

    name: str = "mgmnet"
    modalities: tuple[str, ...] = MGMNET_MODALITIES
    width: int = 64
    num_heads: int = 4
    bridge_layers: int = 1
    rank: int = 16
    embed_dim: int = 64
    audio_pool: int = 4
    frame_widths: tuple[int, ...] = (16, 32)
    ib_dim: int = 32
    ib_beta: float = 1e-3
    context_hidden: int = 32
    head_hidden: int = 64
    dropout: float = 0.3
    implementation: str = "xla"

    def __post_init__(self):
        if not self.modalities or any(m not in MGMNET_MODALITIES for m in self.modalities):
            raise ValueError(f"modalities={self.modalities} must be a non-empty subset of "
                             f"{MGMNET_MODALITIES}")
        sizes = dict(width=self.width, num_heads=self.num_heads, bridge_layers=self.bridge_layers,
                     rank=self.rank, embed_dim=self.embed_dim, audio_pool=self.audio_pool,
                     ib_dim=self.ib_dim, context_hidden=self.context_hidden)
        bad = [f"{k}={v}" for k, v in sizes.items() if int(v) < 1]
        if bad or self.head_hidden < 0:
            raise ValueError(f"sizes must be >= 1 (head_hidden >= 0): {bad or self.head_hidden}")
        if self.width % self.num_heads:
            raise ValueError(f"width={self.width} must be divisible by num_heads={self.num_heads}")
        if self.ib_beta < 0:
            raise ValueError(f"ib_beta={self.ib_beta} must be >= 0")
        lookup(ATTENTION_IMPLEMENTATIONS, self.implementation)


def information_bottleneck_loss(mu, logvar, real, beta: float) -> jnp.ndarray:
    """beta x the mean KL(q(z | x) || N(0, I)) over the real rows.

    Args:
      mu, logvar: [..., Z] float.
      real: [...] bool or float, > 0 for rows that count (real utterances).
      beta: the weight.

    Returns:
      A float32 scalar (0 when no row is real).
    """
    w = jnp.asarray(real, jnp.float32)
    return beta * jnp.sum(gaussian_kl(mu, logvar) * w) / jnp.maximum(jnp.sum(w), 1.0)


class MGMNet(nn.Module):
    """Utterance or dialogue batch -> (logits [B, C] or [B, U, C], aux).

    ``aux``: ``feat_<modality>`` (the masked mean of that modality's encoded sequence, [B, width]
    or [B, U, width]), ``fine``, ``coarse``, ``z`` (sampled in training, = ``mu`` in evaluation),
    ``mu``, ``logvar`` (same leading axes) and
    ``loss_terms`` ({"information_bottleneck": float32 scalar} when ``ib_beta`` > 0, else {}).
    """

    cfg: MGMNetConfig
    num_classes: int
    vocab_size: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        c = self.cfg
        batch, squeeze = as_dialogue(batch)
        utt = jnp.asarray(batch["utt_mask"], bool)  # [B, U]
        b, u = utt.shape
        flat = lambda x: x.reshape((b * u,) + x.shape[2:])  # noqa: E731  [B, U, ...] -> [N, ...]
        seqs, masks = {}, {}
        for m in c.modalities:
            key, mkey = _INPUT[m]
            x, mask = flat(batch[key]), flat(batch[mkey])
            if m == "text":
                enc = TokenSequence(self.vocab_size, c.embed_dim, c.width, c.dropout,
                                    name="enc_text")
            elif m == "audio":
                enc = AudioSequence(c.width, c.audio_pool, name="enc_audio")
            else:
                enc = FrameSequence(tuple(c.frame_widths), c.width, name="enc_frames")
            seqs[m], masks[m] = enc(x, mask, train=train)  # [N, T_m, width], [N, T_m]
        order = tuple(c.modalities)  # the config's order, never the dicts'
        fine = BridgeFusion(c.width, c.num_heads, c.bridge_layers, c.dropout, c.implementation,
                            order=order, name="bridge")(seqs, masks=masks, train=train)
        coarse = BilinearShiftFusion(c.width, c.rank, c.dropout, order=order,
                                     name="bilinear")(seqs, masks=masks, train=train)
        h = nn.relu(nn.Dense(c.width, name="fuse")(jnp.concatenate([fine, coarse], -1)))
        z, mu, logvar = VariationalBottleneck(c.ib_dim, name="bottleneck")(h, train=train)
        unflat = lambda x: x.reshape((b, u) + x.shape[1:])  # noqa: E731
        z = unflat(z)  # [B, U, Z]
        ctx = LSTM(c.context_hidden, bidirectional=True, name="context")(z, utt)  # [B, U, 2h]
        y = jnp.concatenate([z, ctx], axis=-1)
        if c.head_hidden:
            y = nn.relu(nn.Dense(c.head_hidden, name="head_hidden")(y))
        y = nn.Dropout(c.dropout)(y, deterministic=not train)
        logits = nn.Dense(self.num_classes, name="head_out")(y)  # [B, U, C]
        weight = batch.get("weight")
        real = utt if weight is None else utt & (jnp.asarray(weight) > 0)
        terms = {}
        if c.ib_beta > 0:
            terms["information_bottleneck"] = information_bottleneck_loss(
                unflat(mu), unflat(logvar), real, c.ib_beta)
        out = (lambda x: x[:, 0]) if squeeze else (lambda x: x)  # noqa: E731
        aux = {f"feat_{m}": out(unflat(masked_mean(seqs[m], masks[m]))) for m in c.modalities}
        aux.update(fine=out(unflat(fine)), coarse=out(unflat(coarse)), z=out(z),
                   mu=out(unflat(mu)), logvar=out(unflat(logvar)), loss_terms=terms)
        return finish_logits(logits, utt, squeeze), aux


@register_system("mgmnet", MGMNetConfig)
def build(cfg: MGMNetConfig, num_classes: int, vocab_size: int = 0) -> MGMNet:
    """MGMNet for ``num_classes`` classes over a text vocabulary of ``vocab_size`` ids (unused
    without the text modality)."""
    return MGMNet(cfg, num_classes, vocab_size)
