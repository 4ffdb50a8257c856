"""Model and training recipes that several experiment configs share."""

from __future__ import annotations

import ml_collections

PITCH_SHIFT_COPIES = [{"name": "pitch_shift", "n_steps": 2}, {"name": "pitch_shift", "n_steps": -2}]


def s001_model(cfg, modalities, width: int, video_stem_pool: bool, lstm_hidden: int):
    """S001's ResNets at base width ``width`` (the paper's 64, or 16 to fit a CPU), dropout 0.3."""
    m = cfg.model
    m.modalities = list(modalities)
    m.dropout = 0.3
    m.audio.width = width
    m.video.width = width
    m.video.stem_pool = video_stem_pool
    m.lstm_hidden = lstm_hidden
    return cfg


def s001_av_variants(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """S001's Table I: audio-only, video-only, fused at dropout 0.3 and at 0.5; MFCC features."""
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], fused=["audio", "frames"],
             fused_dropout05=["audio", "frames"])
    )
    cfg.variant_overrides = ml_collections.ConfigDict(
        dict(fused_dropout05=dict(model=dict(dropout=0.5)))
    )
    cfg.primary_variant = "fused"
    cfg.data.frontend = "mfcc"
    return cfg


def s003_face_video(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """S003 on a face-video corpus: whole frame + face crop + audio, each its own stream, with
    the paper's augmentation (pitch-shifted audio copies and a random spatial crop)."""
    cfg.data.augment = [{"name": "random_crop_images", "padding": 4}]
    cfg.data.offline_augment = PITCH_SHIFT_COPIES
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], frames=["frames"], face=["face"], fused=["frames", "face", "audio"])
    )
    cfg.train.epochs = 20
    return cfg


def dialogue_text_recipe(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The from-scratch IEMOCAP-text recipe shared by S002 and its baselines (only the model
    differs; see ``s002_iemocap_text.py`` for why it departs from the paper's).

    Batch 16 dialogues, Adam lr 2e-3 (L2 5e-5), 30 warmup steps + cosine decay, clipping at 1.0,
    60 epochs; utterance encoder text-CNN + bag of word and hashed-bigram embeddings (128-d,
    N(0, 0.3)); an auxiliary per-utterance classifier (loss weight 0.5) where the model has one.
    """
    cfg.model.dropout = 0.3
    text = cfg.model.text
    text.embed_dim = 128
    text.filters = 64
    text.dropout = 0.3
    text.kind = "cnn+bow"
    text.bigram_buckets = 20000
    text.embed_init_std = 0.3
    cfg.train.epochs = 60
    cfg.train.batch_size = 16  # dialogues
    cfg.train.lr = 2e-3
    cfg.train.optimizer = "adam"
    cfg.train.weight_decay = 5e-5
    cfg.train.warmup_steps = 30
    cfg.train.aux_loss_weight = 0.5
    cfg.train.log_every = 4
    return cfg
