"""S003 on a face-video corpus: whole frame + face crop + audio, each its own stream (MobileFaceNet-
like CNN per image, 1-D CNN for audio, an LSTM over time each), concatenation + FC. With the paper's
augmentation: pitch-shifted audio copies (+-2 semitones, computed once per run directory) and a
random spatial crop of the frames and faces of each training clip."""

import os

import ml_collections

from experiments.common import base_config


def s003_av_config(corpus: str, corpus_config: str, env_var: str) -> ml_collections.ConfigDict:
    cfg = base_config()
    cfg.system = "s003"
    cfg.data.corpus = corpus
    cfg.data.config = corpus_config
    cfg.data.manual_dir = os.environ.get(env_var, "")
    cfg.data.max_audio_s = 4.0
    cfg.data.max_frames = 16
    cfg.data.augment = [{"name": "random_crop_images", "padding": 4}]
    cfg.data.offline_augment = [
        {"name": "pitch_shift", "n_steps": 2},
        {"name": "pitch_shift", "n_steps": -2},
    ]
    cfg.variants = ml_collections.ConfigDict(
        dict(
            audio=["audio"],
            frames=["frames"],
            face=["face"],
            fused=["frames", "face", "audio"],
        )
    )
    cfg.primary_variant = "fused"
    cfg.model = ml_collections.ConfigDict(
        dict(
            name="s003",
            modalities=["frames", "face", "audio"],
            dropout=0.3,
            lstm_hidden=128,
            fc_hidden=128,
            depthwise_impl="shifted",
        )
    )
    cfg.train.epochs = 20
    cfg.train.batch_size = 32
    cfg.train.lr = 1e-3
    return cfg
