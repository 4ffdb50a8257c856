"""Quickstart: the generated audio-visual-text corpus, unimodal vs fused, on a laptop CPU.

    mmer train --config experiments/quickstart.py --workdir runs/quickstart

Trains four small models (audio-only, video-only, text-only, fused) on the speaker-independent
train split, selects each on validation weighted F1 and tests each once.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated(base_config("quickstart"))
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], text=["text"], fused=["audio", "frames", "text"])
    )
    cfg.data.n_mels = 40
    cfg.model.head_hidden = 64
    return cfg
