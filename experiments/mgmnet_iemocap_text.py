"""MGMNet (S000 §3.3) on the IEMOCAP transcripts: 6 classes, whole dialogues, COSMIC's lists
(108/12 train/validation dialogues of sessions 1-4, 31 test dialogues of session 5); weighted F1
chosen on validation, test scored once.

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce mgmnet --corpus iemocap_text

Text only (the transcripts are the IEMOCAP part held here): the bridge has no audio or video to
query, so the model is its word encoder with self-attention, the information bottleneck on the
utterance vector and the dialogue-context BiLSTM. The survey's Table 5 (weighted F1 72.33, per
class happy 65.22 ... frustrated 67.96) is text + audio + video with pretrained features: the
report lists it for context, not as a target. Embeddings are learnt from scratch (no download).
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.iemocap_text_dialogues(base_config("mgmnet"))
    cfg.train.epochs = 30
    cfg.train.batch_size = 8  # dialogues
    cfg.train.lr = 1e-3
    return cfg
