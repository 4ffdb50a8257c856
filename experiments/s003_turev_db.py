"""S003's speech stream on TurEV-DB (Turkish acted single words; 4 classes, 6 speakers).

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce s003 --corpus turev_db --folds all

The corpus is read by the labelled-folder builder (``data_prep/folder``, config ``turev_db``):
``Sound Source/<Emotion>/<speaker>_<xx>_<word>.wav``, 44.1 kHz, resampled to 16 kHz at build time.
Protocol: the build's 6 leave-one-speaker-out folds (``--folds all``), read as views of one build;
each fold's validation speaker is carved from its training speakers, so the test speaker is never
seen in training or model selection. Speaker 1157 has only angry and sad clips. Same model and
recipe as ``s003_emodb.py`` (audio stream, pitch-shifted copies of the training clips).
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.turev_db_speech(base_config("s003"))
    cfg.data.offline_augment = recipes.PITCH_SHIFT_COPIES
    cfg.model.modalities = ["audio"]
    cfg.model.lstm_hidden = 64
    cfg.model.fc_hidden = 64
    cfg.train.epochs = 20
    cfg.train.batch_size = 16
    cfg.train.weight_decay = 1e-3
    return cfg
