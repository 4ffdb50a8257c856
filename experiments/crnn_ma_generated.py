"""The survey's CRNN-MA (S000 §2.3) on the generated corpus's audio: a CNN with frame
self-attention in parallel with an LSTM with feature x frame attention, joined by a fusion layer;
log-mel input, speaker-independent 1200/200/200 split, selected on validation UAR (the survey's
unweighted accuracy).

    mmer reproduce crnn_ma --corpus generated --seeds 3

CPU-sized like ``s004_speech_generated.py``: 6 epochs of the 1.5 s clips. The survey reports
IEMOCAP 4-class figures (not held here), so this run tests the network on the corpus whose audio
every system here shares, beside s004_speech's CNN-LSTM on the same split.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated_speech(base_config("crnn_ma"))
    cfg.train.epochs = 6
    cfg.train.select_metric = "uar"
    return cfg
