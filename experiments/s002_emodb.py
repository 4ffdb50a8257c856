"""S002's audio utterance encoder on EmoDB: 4-layer Bi-LSTM + 4 linear layers + attention pooling,
then the (single-step) context Bi-LSTM and attention block. No dialogues in EmoDB (U = 1).

    mmer reproduce s002 --corpus emodb --seeds 3
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.emodb_speech(base_config("s002"))
    cfg.train.epochs = 15  # the 4-layer Bi-LSTM over ~200 frames is the slowest encoder on CPU
    m = cfg.model
    m.dropout = 0.3
    m.audio.hidden = 64
    m.audio.linear = [128, 128, 128, 128]
    m.audio.attn_hidden = 64
    m.context_hidden = 64
    m.head_hidden = 64
    return cfg
