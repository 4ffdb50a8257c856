"""The feature-stream quickstart on CMU-MOSI: sentiment regression from the aligned MOSI pickles.

    mmer train --config experiments/quickstart_cmu_mosi.py --workdir runs/quickstart_cmu_mosi

Needs the pickle (MulT ``mosi_data.pkl`` or MMSA ``MOSI/Processed/aligned_50.pkl``) in
``$MMER_CMU_MOSI`` or ``$MMER_DATA_ROOT/cmu_mosi`` (or ``--config.data.manual_dir``); ``mmer
reproduce`` skips the config when neither holds one. One ``feature_lstm`` (LayerNorm, projection,
BiLSTM, mean+max pooling) per stream, concatenation, an MLP with one output; L1 loss, selection on
validation MAE, test once; MMSA's metrics (Acc-2 has0/non0, F1, Acc-7, MAE, Corr). Variants: each
stream alone and the three fused.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config
from mmer_jax.models.systems.quickstart import FEATURE_STREAM_ENCODERS


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.cmu_mosi(base_config("quickstart"))
    cfg.model.encoders = ml_collections.ConfigDict(FEATURE_STREAM_ENCODERS)
    cfg.variants = ml_collections.ConfigDict(dict(
        text=["text_feat"], audio=["audio_feat"], vision=["vision_feat"],
        fused=["text_feat", "audio_feat", "vision_feat"],
    ))
    cfg.model.head_hidden = 64
    cfg.model.dropout = 0.2
    return cfg
