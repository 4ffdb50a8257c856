"""The feature-stream quickstart on CMU-MOSEI: sentiment regression from the aligned MOSEI pickles.

    mmer train --config experiments/quickstart_cmu_mosei.py --workdir runs/quickstart_cmu_mosei

Needs the pickle (MulT ``mosei_senti_data.pkl`` or MMSA ``MOSEI/Processed/aligned_50.pkl``) in
``$MMER_CMU_MOSEI`` or ``$MMER_DATA_ROOT/cmu_mosei`` (or ``--config.data.manual_dir``). The model
and protocol are those of experiments/quickstart_cmu_mosi.py (fused streams only: MOSEI is 13
times larger).
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config
from mmer_jax.models.systems.quickstart import FEATURE_STREAM_ENCODERS


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.cmu_mosei(base_config("quickstart"))
    cfg.model.encoders = ml_collections.ConfigDict(FEATURE_STREAM_ENCODERS)
    cfg.model.head_hidden = 64
    cfg.model.dropout = 0.2
    return cfg
