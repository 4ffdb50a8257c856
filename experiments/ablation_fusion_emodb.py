"""The fusion ablation on EmoDB: S003's speech branch (1-D CNN over log-mel -> LSTM) as in
``s003_emodb.py``, trained once per fusion by ``mmer reproduce --ablation fusion --corpus emodb``.

EmoDB is speech only and S003 reads one audio stream, so every fusion here sees a single
modality: concat is the identity, TFN a ReLU MLP on [h; 1], LMF a weighted sum of r linear maps
of [h; 1] (one linear layer), MulT a self-attention block over one step, late fusion one
linear scorer, bridge a self-attention block (no other modality to query) and bilinear the
bridge vector with no shift to add. The column measures
what each fusion layer adds as a head on one stream (and its cost), not cross-modal fusion.
No pitch-shift copies (unlike ``s003_emodb.py``): the same budget for every row, affordably.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.emodb_speech(base_config("s003"))
    cfg.model.lstm_hidden = 64
    cfg.model.fc_hidden = 64
    return cfg
