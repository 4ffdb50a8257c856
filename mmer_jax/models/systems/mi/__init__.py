"""MI: multimodal emotion recognition by dynamic convolution and residual gating.

Source: S000 §3.1 (``shared/papers/S000_survey_multimodal_emotion_recognition.txt``, the survey's
summary of Yu et al., its ref. [9]); CMU-MOSEI and IEMOCAP results in its Table 3 and the text
below it. The survey gives the structure only (no layer sizes, kernel sizes or training
settings); every size below is ours and small.

Our reading of §3.1, step by step (blocks in :mod:`mmer_jax.models.systems.mi.layers`):

1. Per modality, three levels of features. Low-level: a learned token embedding (text), the
   log-mel/MFCC frames (audio), a small per-frame CNN (frames), or a Dense projection of
   pre-extracted feature streams (``text_feat``, ``audio_feat``, ``vision_feat``, the
   CMU-MOSI/MOSEI pickles). High-level local features: a 1-D convolution over time (stride
   ``audio_stride`` for audio, whose frames are 10 ms apart). Context: a BiLSTM. Each gives a
   sequence [B, T_m, width] with its mask.
2. Language and face are not synchronous, so the sequences are not aligned step by step; we bring
   each to ``segments`` positions by masked average pooling over equal shares of its *valid*
   steps (adaptive pooling; a short sequence repeats steps), so position s of every modality
   covers the same fraction of the utterance and positions can be paired across modalities.
   (Our choice: the survey does not say how the lengths are matched.)
3. Interactions: for every ordered pair (a, b), kernels predicted from modality a at each
   position are applied to modality b around that position (cross-modal dynamic convolution,
   ``mmer_kernels.dynamic_conv`` through ``implementation``), and for a = b the intra-modal one.
   Each result is averaged over the valid positions: one interaction representation [B, width].
   ``interactions`` = "all" (M^2 of them), "cross" (M(M-1)) or "intra" (M) for ablations.
4. Residual gating: the unimodal representations (masked means of the context sequences) are
   projected to a residual base; each interaction gets a sigmoid gate computed from itself and
   the base, and the gated interactions are added to the base. The gates (``aux["gates"]``
   [B, n_interactions], in :func:`interaction_names` order) are the learned weight of each
   interaction in the decision.
5. Classifier: dropout, a ReLU layer, the output layer: ``num_classes`` logits, or 1 output for
   a regression run (``protocol.task = "regression"`` builds the model with ``num_classes=1``).

``aux`` also holds ``feat_<modality>`` [B, width] (the unimodal representations) and ``fused``
[B, width]. Padded steps, tokens or frames change no output, and any non-empty subset of the
modalities works.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import masked_mean
from mmer_jax.models.ops import DYNAMIC_CONV_IMPLEMENTATIONS
from mmer_jax.models.systems.mi.layers import (
    CrossModalDynamicConv,
    MIStream,
    ResidualGate,
    segment_pool,
)
from mmer_jax.registry import register_system

# Model-batch key of each modality's input (its mask is "<key>_mask"; docs/contracts.md) and the
# kind of low-level features its stream makes.
MI_INPUT_KEY = {"text": "tokens", "audio": "audio", "frames": "frames",
                "text_feat": "text_feat", "audio_feat": "audio_feat", "vision_feat": "vision_feat"}
MI_STREAM_KIND = {"text": "tokens", "audio": "audio", "frames": "frames",
                  "text_feat": "features", "audio_feat": "features", "vision_feat": "features"}
INTERACTIONS = ("all", "cross", "intra")


def interaction_pairs(modalities: tuple[str, ...],
                      interactions: str) -> tuple[tuple[str, str], ...]:
    """The (kernel source, target) modality pairs, source-major in ``modalities`` order.

    Example: ("text", "audio"), "all" -> (text, text), (text, audio), (audio, text), (audio, audio).

    Raises:
      ValueError: ``interactions`` not in ``INTERACTIONS``, or no pair results ("cross" with one
        modality).
    """
    if interactions not in INTERACTIONS:
        raise ValueError(f"interactions={interactions!r} must be one of {INTERACTIONS}")
    pairs = tuple((a, b) for a in modalities for b in modalities
                  if interactions == "all" or (a == b) == (interactions == "intra"))
    if not pairs:
        raise ValueError(f"interactions={interactions!r} leaves no interaction for "
                         f"modalities={tuple(modalities)}")
    return pairs


def interaction_names(modalities: tuple[str, ...], interactions: str = "all") -> tuple[str, ...]:
    """Names ``"<source>_<target>"`` of the columns of ``aux["gates"]``, in order.

    Raises:
      ValueError: as :func:`interaction_pairs`.
    """
    return tuple(f"{a}_{b}" for a, b in interaction_pairs(modalities, interactions))


@dataclasses.dataclass(frozen=True)
class MIConfig:
    """``model`` section of MI (S000 §3.1); every default of the system lives here.

    Attributes:
      modalities: non-empty subset of ``MI_INPUT_KEY`` (no repeats), in sequence order.
      width: d, the width of every stream, interaction and the fused vector (even, divisible by
        ``num_heads``).
      embed_dim: text token embedding width.
      frame_widths: channels of the per-frame CNN's stride-2 blocks.
      conv_kernel: taps of each stream's local 1-D convolution.
      audio_stride: time stride of the audio stream's convolution (log-mel frames are 10 ms).
      segments: common length every sequence is pooled to before the dynamic convolutions.
      num_heads, kernel_size: heads and taps of the (cross-modal) dynamic convolutions.
      implementation: dynamic-conv backend: "auto" | "xla" | "pallas" | "interpret".
      interactions: "all" | "cross" | "intra" (which modality pairs interact).
      stream_dropout: dropout on each stream's convolution output.
      dropout: dropout before and after the classifier's hidden layer.
      fc_hidden: width of the classifier's hidden layer.
    """

    name: str = "mi"
    modalities: tuple[str, ...] = ("text", "audio", "frames")
    width: int = 64
    embed_dim: int = 64
    frame_widths: tuple[int, ...] = (16, 32)
    conv_kernel: int = 3
    audio_stride: int = 4
    segments: int = 8
    num_heads: int = 4
    kernel_size: int = 3
    implementation: str = "xla"
    interactions: str = "all"
    stream_dropout: float = 0.1
    dropout: float = 0.3
    fc_hidden: int = 64

    def __post_init__(self):
        mods = tuple(self.modalities)
        if not mods or len(set(mods)) != len(mods) or any(m not in MI_INPUT_KEY for m in mods):
            raise ValueError(f"modalities={mods} must be a non-empty subset of "
                             f"{tuple(MI_INPUT_KEY)} without repeats")
        for field in ("width", "embed_dim", "conv_kernel", "audio_stride", "segments",
                      "num_heads", "kernel_size", "fc_hidden"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field}={getattr(self, field)} must be >= 1")
        if self.width % 2 or self.width % self.num_heads:
            raise ValueError(f"width={self.width} must be even and divisible by "
                             f"num_heads={self.num_heads}")
        if not self.frame_widths or min(self.frame_widths) < 1:
            raise ValueError(f"frame_widths={self.frame_widths} must be positive channel counts")
        for field in ("stream_dropout", "dropout"):
            if not 0.0 <= getattr(self, field) < 1.0:
                raise ValueError(f"{field}={getattr(self, field)} must be in [0, 1)")
        if self.implementation not in DYNAMIC_CONV_IMPLEMENTATIONS:
            raise ValueError(f"implementation={self.implementation!r}: known: "
                             f"{', '.join(DYNAMIC_CONV_IMPLEMENTATIONS.names())}")
        interaction_pairs(mods, self.interactions)


class MI(nn.Module):
    """Utterance batch -> (logits [B, num_classes], aux).

    ``aux``: ``feat_<modality>`` [B, width], ``gates`` [B, n_interactions] in [0, 1]
    (columns: :func:`interaction_names`), ``fused`` [B, width].
    """

    cfg: MIConfig
    num_classes: int
    vocab_size: int = 0

    @nn.compact
    def __call__(self, batch: dict, *, train: bool):
        c = self.cfg
        seqs, seq_masks, aux = {}, {}, {}
        for m in c.modalities:
            key = MI_INPUT_KEY[m]
            stream = MIStream(MI_STREAM_KIND[m], c.width, self.vocab_size, c.embed_dim,
                              tuple(c.frame_widths), c.conv_kernel,
                              c.audio_stride if m == "audio" else 1, c.stream_dropout,
                              name=f"stream_{m}")
            h, mask = stream(batch[key], batch[f"{key}_mask"], train=train)  # [B, T_m, d]
            aux[f"feat_{m}"] = masked_mean(h, mask)  # [B, d]
            seqs[m], seq_masks[m] = segment_pool(h, mask, c.segments)  # [B, S, d], [B, S]
        pairs = interaction_pairs(tuple(c.modalities), c.interactions)
        reps = []
        for a, b in pairs:
            conv = CrossModalDynamicConv(c.num_heads, c.kernel_size, c.implementation,
                                         name=f"dynconv_{a}_{b}")
            reps.append(masked_mean(conv(seqs[a], seqs[b], seq_masks[b]), seq_masks[b]))
        unimodal = jnp.concatenate([aux[f"feat_{m}"] for m in c.modalities], axis=-1)
        base = nn.Dense(c.width, name="base")(unimodal)  # [B, d]
        fused, gates = ResidualGate(tuple(f"{a}_{b}" for a, b in pairs), name="fusion")(
            base, reps)
        aux["gates"], aux["fused"] = gates, fused
        z = nn.Dropout(c.dropout, deterministic=not train)(fused)
        z = nn.relu(nn.Dense(c.fc_hidden, name="fc")(z))
        z = nn.Dropout(c.dropout, deterministic=not train)(z)
        return nn.Dense(self.num_classes, name="head_out")(z), aux


@register_system("mi", MIConfig)
def build(cfg: MIConfig, num_classes: int, vocab_size: int = 0) -> MI:
    """MI for ``num_classes`` outputs (1 for a regression run).

    Raises:
      ValueError: ``num_classes`` < 1, or text among the modalities with ``vocab_size`` < 2.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be >= 1")
    if "text" in cfg.modalities and vocab_size < 2:
        raise ValueError(f"vocab_size={vocab_size}: modality 'text' needs a vocabulary")
    return MI(cfg, num_classes, vocab_size)
