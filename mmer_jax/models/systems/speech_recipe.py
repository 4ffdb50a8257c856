"""``speech_recipe``: a speech-emotion model trained from scratch on a few hundred clips.

Issue 13 part 2 (ours, not a paper's): log-mel features (per-utterance normalised on the device,
``data.feature_norm``) -> SpecAugment band masks in training (``model.spec_augment``) -> a
registered speech encoder (``model.encoder``, default ``speech_cnn``: a small 2-D CNN with
GroupNorm over valid frames and statistics pooling) -> dropout -> a linear head. The training
side of the recipe lives in the ``train`` section: ``label_smoothing``, ``mixup_alpha``,
``schedule="cosine"`` with ``warmup_steps``. Each ingredient switches off on its own
(``spec_augment.freq_masks = time_masks = 0``, ``mixup_alpha = 0``, ...); the experiment configs
``experiments/speech_recipe_<corpus>.py`` say which ones validation kept.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from mmer_jax.models.encoders.speech_cnn import SpecAugmentConfig, SpeechCNNConfig, spec_augment
from mmer_jax.models.systems.speech_only import check_speech_config, encode_and_classify
from mmer_jax.registry import register_system


@dataclasses.dataclass(frozen=True)
class SpeechRecipeConfig:
    """``model`` section of ``speech_recipe`` (every default of the system lives here)."""

    name: str = "speech_recipe"
    modalities: tuple[str, ...] = ("audio",)
    encoder: str = "speech_cnn"  # an ENCODERS name built as (audio)
    audio: SpeechCNNConfig = SpeechCNNConfig()
    spec_augment: SpecAugmentConfig = SpecAugmentConfig()
    dropout: float = 0.3  # on the utterance vector, before the head

    def __post_init__(self):
        check_speech_config(self)


class SpeechRecipe(nn.Module):
    """Utterance batch (``audio`` [B, T, F], ``audio_mask`` [B, T]) -> (logits [B, C],
    ``{"feat_audio": [B, D]}``). SpecAugment draws from the ``dropout`` RNG stream, in training
    only."""

    cfg: SpeechRecipeConfig
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        c = self.cfg
        x, mask = batch["audio"], batch["audio_mask"]
        if train and c.spec_augment.enabled:
            x = spec_augment(self.make_rng("dropout"), x, mask, c.spec_augment)
        return encode_and_classify(c, x, mask, self.num_classes, train)


@register_system("speech_recipe", SpeechRecipeConfig)
def build(cfg: SpeechRecipeConfig, num_classes: int, vocab_size: int = 0) -> SpeechRecipe:
    """The speech recipe's model for ``num_classes`` outputs (no text: ``vocab_size`` unused)."""
    del vocab_size
    return SpeechRecipe(cfg, num_classes)
