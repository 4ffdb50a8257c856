"""Quickstart: the generated audio-visual-text corpus, unimodal vs fused, on a laptop CPU.

    mmer train --config experiments/quickstart.py --workdir runs/quickstart

Trains four small models (audio-only, video-only, text-only, fused) on the speaker-independent
train split, selects each on validation weighted F1 and tests each once.
"""

import ml_collections

from experiments.common import generated_config


def get_config() -> ml_collections.ConfigDict:
    cfg = generated_config("quickstart")
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], text=["text"], fused=["audio", "frames", "text"])
    )
    cfg.primary_variant = "fused"
    cfg.data.n_mels = 40
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
    return cfg
