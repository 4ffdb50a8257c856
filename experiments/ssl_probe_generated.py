"""The weighted-layer probe (``ssl_probe``) on the generated corpus's audio: a smoke run of the
encoder-feature cache and the probe that needs no real corpus.

    mmer encoders fetch whisper-base
    mmer train --config experiments/ssl_probe_generated.py --workdir runs/ssl_probe_generated

The generated audio is synthetic (tones and noise, ``data_prep/generated``), far from the speech
Whisper was trained on: the figures say the pipeline runs, not how well Whisper hears emotion.
"""

import ml_collections

from experiments import corpora, encoders
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.encoder_features(corpora.generated(base_config("ssl_probe")))
    cfg.data.encoder = encoders.imported("whisper-base")
    cfg.data.max_feat_steps = 96  # 1.5-s clips: 75 positions
    cfg.train.epochs = 8
    cfg.train.batch_size = 32
    cfg.train.select_metric = "uar"
    return cfg
