"""Quickstart: the generated audio-visual-text corpus, unimodal vs fused, on a laptop CPU.

    mmer train --config experiments/quickstart.py --workdir runs/quickstart

Trains four small models (audio-only, video-only, text-only, fused) on the speaker-independent
train split, selects each on validation weighted F1 and tests each once.
"""

import ml_collections

from experiments.common import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = base_config()
    cfg.system = "quickstart"
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], text=["text"], fused=["audio", "frames", "text"])
    )
    cfg.primary_variant = "fused"
    cfg.data.corpus = "generated_emotion"
    cfg.data.config = "default"
    cfg.data.max_audio_s = 1.5
    cfg.data.n_mels = 40
    cfg.data.max_frames = 10
    cfg.data.max_tokens = 16
    cfg.model.encoders = ml_collections.ConfigDict(
        dict(
            audio=dict(
                name="resnet2d", depth=(1, 1), width=16, norm="batch", stem_stride=2, stem_pool=True
            ),
            frames=dict(name="cnn_lstm", widths=(16, 32), hidden=64),
            text=dict(name="bilstm", embed_dim=32, hidden=32, dropout=0.1),
        )
    )
    cfg.model.head_hidden = 64
    cfg.model.dropout = 0.3
    cfg.train.epochs = 8
    cfg.train.batch_size = 16
    cfg.train.lr = 1e-3
    cfg.protocol.speaker_independent = True
    return cfg
