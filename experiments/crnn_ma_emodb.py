"""The survey's CRNN-MA (S000 §2.3) on EmoDB speech: a CNN with frame self-attention in parallel
with an LSTM with feature x frame attention, joined by a fusion layer; speaker-independent fixed
split (6/2/2 speakers). Selected on validation UAR, the survey's measure (unweighted accuracy;
its IEMOCAP 4-class protocol is not available here).

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce crnn_ma --corpus emodb --seeds 3
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.emodb_speech(base_config("crnn_ma"))
    cfg.train.select_metric = "uar"
    return cfg
