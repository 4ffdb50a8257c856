"""bc-LSTM (Poria et al. 2017), S002's context baseline, on IEMOCAP transcripts (6 classes).

    mmer reproduce bc_lstm --corpus iemocap_text --seeds 3

Same protocol, utterance encoder (text-CNN over trainable 300-d embeddings), optimizer and budget as
experiments/s002_iemocap_text.py, so the difference to S002 is the model alone. S002's paper
reports bc-LSTM at accuracy 55.2 / weighted F1 54.9.
"""

import ml_collections

from experiments.s002_iemocap_text import iemocap_text_base


def get_config() -> ml_collections.ConfigDict:
    cfg = iemocap_text_base("bc_lstm", "bc_lstm")
    cfg.model.context_hidden = 100
    cfg.model.bidirectional = True
    cfg.model.head_hidden = 100
    return cfg
