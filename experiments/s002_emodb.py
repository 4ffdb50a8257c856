"""S002's audio utterance encoder on EmoDB: 4-layer Bi-LSTM + 4 linear layers + attention pooling,
then the (single-step) context Bi-LSTM and attention block. No dialogues in EmoDB (U = 1).

    mmer reproduce s002 --corpus emodb --seeds 3
"""

import ml_collections

from experiments.common import emodb_config


def get_config() -> ml_collections.ConfigDict:
    cfg = emodb_config("s002")
    cfg.train.epochs = 15  # the 4-layer Bi-LSTM over ~200 frames is the slowest encoder on CPU
    cfg.model = ml_collections.ConfigDict(
        dict(
            name="s002",
            modalities=["audio"],
            dropout=0.3,
            audio_hidden=64,
            audio_layers=4,
            audio_linear=(128, 128, 128, 128),
            audio_attn_hidden=64,
            context_hidden=64,
            num_heads=4,
            head_hidden=64,
        )
    )
    return cfg
