"""S001's speech branch on EmoDB: MFCC -> ResNet-18 -> FC (no video in EmoDB).

    mmer reproduce s001 --corpus emodb --seeds 3

ResNet-18 depth with 16 base channels (CPU-sized; the paper's 64 via --config.model.audio.width=64).
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.emodb_speech(base_config("s001"))
    cfg.data.frontend = "mfcc"
    return recipes.s001_model(cfg, ["audio"], width=16, video_stem_pool=False, lstm_hidden=64)
