"""The survey's CRNN-MA (S000 §2.3) on TurEV-DB (Turkish acted single words; 4 classes, 6
speakers), selected on validation UAR (the survey's unweighted accuracy).

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce crnn_ma --corpus turev_db --folds all

Read by the labelled-folder builder (``data_prep/folder``, config ``turev_db``), 44.1 kHz resampled
to 16 kHz at build time; the build's 6 leave-one-speaker-out folds (``--folds all``), each fold's
validation speaker carved from its training speakers. Same data settings as ``s003_turev_db.py``
without its pitch-shifted copies (CRNN-MA uses no augmentation).
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.turev_db_speech(base_config("crnn_ma"))
    cfg.train.epochs = 20
    cfg.train.batch_size = 16
    cfg.train.weight_decay = 1e-3
    cfg.train.select_metric = "uar"
    return cfg
