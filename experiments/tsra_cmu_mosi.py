"""TSRA (S000 §3.2) on CMU-MOSI: sentiment regression from the aligned MOSI feature pickles.

    mmer reproduce tsra --corpus cmu_mosi --seeds 3

The survey reports TSRA on GMSA only (not available); CMU-MOSI is the public corpus with the same
measures (Acc-2/3/5, F1, MAE, Corr), so these numbers have no paper target. Needs the pickle
(MulT ``mosi_data.pkl`` or MMSA ``MOSI/Processed/aligned_50.pkl``) in ``$MMER_CMU_MOSI`` or
``$MMER_DATA_ROOT/cmu_mosi``; the harness skips this config when neither holds one. Protocol
(experiments/corpora.py ``cmu_mosi``): the standard folds, the score in [-3, 3] as target with L1
loss, selection on validation MAE, test once. Each stream: a Dense projection per step, a 2-layer
LSTM, its last valid state; shared / private / fused spaces with similarity, difference and
reconstruction losses beside the L1 task loss.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.cmu_mosi(base_config("tsra"))
    m = cfg.model
    m.modalities = ["text_feat", "audio_feat", "vision_feat"]
    m.hidden = 48
    m.dim = 48
    m.recognizer_hidden = 48
    m.head_hidden = 48
    m.dropout = 0.2
    return cfg
