"""``ssl_finetune``: a pretrained speech encoder trained end to end from its imported weights.

Issue 29 part 3: the ``imported`` encoder (``model.audio``: an import directory of ``mmer
encoders import|fetch``, every hidden state in a learned softmax-weighted sum, the SUPERB head,
statistics pooling over valid frames, time masks on its input in training) -> dropout -> a linear
head. The run's ``data.frontend`` is the encoder's input ("whisper" for Whisper, "waveform" for
wav2vec 2.0 / HuBERT / WavLM). The fine-tuning recipe lives in the ``train`` section:
``freeze_stem`` (the convolutional stem is not updated), ``layer_lr_decay`` (layer k of N learns
at lr * decay^(N - k)), ``warmup_steps``; the weights are put in at initialisation by
``mmer_jax.train.imports``. :func:`summarize` reports the learned state weights.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from mmer_jax.models.encoders.imported import ImportedEncoderConfig
from mmer_jax.models.systems.speech_only import check_speech_config, encode_and_classify
from mmer_jax.registry import register_system


@dataclasses.dataclass(frozen=True)
class SSLFinetuneConfig:
    """``model`` section of ``ssl_finetune`` (every default of the system lives here).

    Attributes:
      modalities: ("audio",).
      encoder: "imported" (the registered encoder built on ``audio``).
      audio: the import and how it is read (:class:`ImportedEncoderConfig`; ``path`` must be
        set; default: weighted states, statistics pooling, fine-tuned, 2 time masks of up to
        40 input frames).
      dropout: on the pooled vector, before the head.
    """

    name: str = "ssl_finetune"
    modalities: tuple[str, ...] = ("audio",)
    encoder: str = "imported"
    audio: ImportedEncoderConfig = ImportedEncoderConfig(time_masks=2, time_mask_width=40)
    dropout: float = 0.2

    def __post_init__(self):
        check_speech_config(self)
        if self.encoder not in ("imported",):
            raise ValueError(f"encoder={self.encoder!r}: ssl_finetune fine-tunes an imported "
                             "encoder ('imported')")


class SSLFinetune(nn.Module):
    """Utterance batch (``audio``: the encoder's input, ``audio_mask``) -> (logits [B, C],
    ``{"feat_audio": [B, 2D]}``)."""

    cfg: SSLFinetuneConfig
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        return encode_and_classify(self.cfg, batch["audio"], batch["audio_mask"],
                                   self.num_classes, train)


def summarize(params) -> dict:
    """What a run reports of a fine-tuned model: ``{"layer_weights": [L + 1] softmax weights}``
    of the weighted hidden states (empty when ``audio.states`` names one state)."""
    logits = params.get("enc_audio", {}).get("state_logits")
    return {"layer_weights": [] if logits is None
            else [float(w) for w in jax.nn.softmax(logits)]}


@register_system("ssl_finetune", SSLFinetuneConfig, summarize=summarize)
def build(cfg: SSLFinetuneConfig, num_classes: int, vocab_size: int = 0) -> SSLFinetune:
    """The fine-tuning model for ``num_classes`` outputs (no text: ``vocab_size`` unused)."""
    del vocab_size
    return SSLFinetune(cfg, num_classes)
