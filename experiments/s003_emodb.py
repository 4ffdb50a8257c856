"""S003's audio branch on EmoDB: 1-D CNN over log-mel -> LSTM -> FC, with the paper's pitch-shift
augmentation: every training clip also appears shifted 2 semitones up and 2 down (copies computed
once per run directory, validation and test untouched).

mmer reproduce s003 --corpus emodb --seeds 3
"""

import ml_collections

from experiments.common import emodb_config


def get_config() -> ml_collections.ConfigDict:
    cfg = emodb_config("s003")
    cfg.model = ml_collections.ConfigDict(
        dict(name="s003", modalities=["audio"], dropout=0.3, lstm_hidden=64, fc_hidden=64)
    )
    cfg.data.offline_augment = [
        {"name": "pitch_shift", "n_steps": 2},
        {"name": "pitch_shift", "n_steps": -2},
    ]
    return cfg
