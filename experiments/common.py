"""Defaults shared by every experiment config; each experiment overrides what differs."""

from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.system = "quickstart"
    cfg.seed = 0
    cfg.primary_variant = "fused"
    cfg.variants = ml_collections.ConfigDict()  # {name: [modalities]}; empty -> model.modalities

    cfg.data = ml_collections.ConfigDict(dict(
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
    ))

    cfg.model = ml_collections.ConfigDict(dict(
        name="multimodal",
        modalities=["audio", "frames", "text"],
        fusion="concat",
        head_hidden=128,
        dropout=0.3,
        encoders=ml_collections.ConfigDict(),
    ))

    cfg.train = ml_collections.ConfigDict(dict(
        epochs=10,
        batch_size=32,
        lr=1e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        schedule="cosine",
        warmup_steps=0,
        grad_clip=1.0,
        label_smoothing=0.0,
        dtype="float32",  # or bfloat16 (mixed precision: float32 master weights)
        select_metric="weighted_f1",
        keep_checkpoints=2,
        checkpoint_every_steps=0,
        log_every=10,
        progress=True,
        num_devices=0,  # 0 = every local device
        stop_after_steps=0,  # > 0 simulates an interruption (tests of resume)
    ))
    cfg.protocol = ml_collections.ConfigDict(dict(split="", fold="", speaker_independent=True))
    return cfg
