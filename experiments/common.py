"""Defaults shared by every experiment config; each experiment overrides what differs."""

from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.system = "quickstart"
    cfg.seed = 0
    cfg.primary_variant = "fused"
    cfg.variants = ml_collections.ConfigDict()  # {name: [modalities]}; empty -> model.modalities
    # {variant: nested config changes}, e.g. {"fused_dropout05": {"model": {"dropout": 0.5}}}
    cfg.variant_overrides = ml_collections.ConfigDict()
    # {view name: [class names]}: extra confusion views in reproduction reports (S001's 6 of 8).
    cfg.class_views = ml_collections.ConfigDict()

    cfg.data = ml_collections.ConfigDict(
        dict(
            corpus="generated_emotion",
            config="default",
            data_dir="~/tensorflow_datasets",
            manual_dir="",
            build_if_missing=True,
            cache=True,
            read_threads=2,
            sample_rate=16000,
            max_audio_s=4.0,
            audio_bucket_s=0.5,
            frontend="logmel",  # logmel | mfcc, computed on the device
            n_mels=64,
            n_mfcc=40,
            n_fft=400,
            hop=160,
            feature_norm=True,
            max_frames=16,
            max_tokens=48,
            token_bucket=8,
            min_count=1,
            # Online ops on training examples, e.g. [{"name": "random_crop_images", "padding": 2}]
            # (mmer_jax.data.augment.AUGMENTATIONS).
            augment=[],
            # Precomputed audio copies added to the training split, e.g.
            # [{"name": "pitch_shift", "n_steps": 2}] (mmer_jax.data.augmented_source).
            offline_augment=[],
        )
    )

    cfg.model = ml_collections.ConfigDict(
        dict(
            name="multimodal",
            modalities=["audio", "frames", "text"],
            fusion="concat",
            head_hidden=128,
            dropout=0.3,
            encoders=ml_collections.ConfigDict(),
        )
    )

    cfg.train = ml_collections.ConfigDict(
        dict(
            epochs=10,
            batch_size=32,
            lr=1e-3,
            optimizer="adamw",
            weight_decay=1e-4,
            schedule="cosine",
            warmup_steps=0,
            grad_clip=1.0,
            label_smoothing=0.0,
            aux_loss_weight=0.0,  # > 0: add the model's aux_logits loss (deep supervision)
            dtype="float32",  # or bfloat16 (mixed precision: float32 master weights)
            select_metric="weighted_f1",
            keep_checkpoints=2,
            checkpoint_every_steps=0,
            log_every=10,
            progress=True,
            num_devices=0,  # 0 = every local device
            stop_after_steps=0,  # > 0 simulates an interruption (tests of resume)
        )
    )
    cfg.protocol = ml_collections.ConfigDict(
        dict(split="", fold="", speaker_independent=True, measure_speakers=True)
    )
    return cfg


def generated_config(system: str) -> ml_collections.ConfigDict:
    """The generated corpus (speaker-independent 1200/200/200) with unimodal and fused variants."""
    cfg = base_config()
    cfg.system = system
    cfg.data.corpus = "generated_emotion"
    cfg.data.config = "default"
    cfg.data.max_audio_s = 1.5
    cfg.data.max_frames = 10
    cfg.data.max_tokens = 16
    cfg.train.epochs = 8
    cfg.train.batch_size = 16
    cfg.train.lr = 1e-3
    return cfg


def emodb_config(system: str) -> ml_collections.ConfigDict:
    """EmoDB speech only, speaker-independent fixed split (6/2/2 speakers) from ../shared/data."""
    import os

    cfg = base_config()
    cfg.system = system
    cfg.variants = ml_collections.ConfigDict(dict(audio=["audio"]))
    cfg.primary_variant = "audio"
    cfg.data.corpus = "emodb"
    cfg.data.config = "default"
    cfg.data.manual_dir = os.environ.get("MMER_EMODB") or os.path.normpath(
        os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "emodb")
    )
    cfg.data.max_audio_s = 4.0
    cfg.model.modalities = ["audio"]
    cfg.train.epochs = 30
    cfg.train.batch_size = 16
    cfg.train.lr = 1e-3
    cfg.train.weight_decay = 1e-3
    cfg.protocol.split = "EmoDB speakers 6/2/2 (train 03 08 09 10 11 14; val 12 13; test 15 16)"
    return cfg
