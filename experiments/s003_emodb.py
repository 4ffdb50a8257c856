"""S003's audio branch on EmoDB: 1-D CNN over log-mel -> LSTM -> FC, with the paper's pitch-shift
augmentation: every training clip also appears shifted 2 semitones up and 2 down (copies computed
once per run directory, validation and test untouched).

mmer reproduce s003 --corpus emodb --seeds 3
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.emodb_speech(base_config("s003"))
    cfg.model.lstm_hidden = 64
    cfg.model.fc_hidden = 64
    cfg.data.offline_augment = recipes.PITCH_SHIFT_COPIES
    return cfg
