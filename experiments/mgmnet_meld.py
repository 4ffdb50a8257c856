"""MGMNet (S000 §3.3) on MELD's transcripts: 7 emotions, whole dialogues, the official
train/dev/test split (1,039/114/280 dialogues), weighted F1 chosen on dev, test scored once.

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce mgmnet --corpus meld

Text only: the ``text`` builder config reads MELD's CSVs, so the bridge has no audio or video to
query (self-attention over the tokens) and the bilinear shift has nothing to add; the model is
then its word encoder, the information bottleneck and the dialogue context BiLSTM. The survey's
66.95 weighted F1 is text + audio + video with pretrained features: not a target for this
configuration. The Friends cast speaks in every split, so the protocol is not
speaker-independent (the run measures the overlap). No copy of MELD is held here: the config is
tested on a fixture in the release layout, and ``mmer reproduce`` skips it where the corpus is
absent.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.meld_dialogues(base_config("mgmnet"))
    cfg.train.epochs = 30
    cfg.train.batch_size = 8  # dialogues
    cfg.train.lr = 1e-3
    return cfg
