"""The speech recipe (system ``speech_recipe``) on TurEV-DB (Turkish acted single words; 4 classes,
6 speakers), leave-one-speaker-out.

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce speech_recipe --corpus turev_db --folds all

Read by the labelled-folder builder (config ``turev_db``, 44.1 kHz resampled to 16 kHz at build
time). Protocol: the build's 6 ``loso`` folds (test = speaker k, validation = speaker k+1, train =
the other four); the epoch is chosen on validation UAR, test scored once there. Speaker 1157 has
only angry and sad clips. Clips are 0.35-2.47 s: the few longer than ``data.max_audio_s`` = 2.0 s
get a random 2-s window in training and the centre one otherwise.

Same model and training recipe as ``speech_recipe_emodb.py`` (see its docstring for the
ingredients); fewer epochs because each fold trains on ~1,100 clips instead of ~320.
"""

import ml_collections

from experiments import corpora, speech_recipe_emodb


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.turev_db_speech(speech_recipe_emodb.get_config())
    cfg.data.fold_protocol = "loso"
    cfg.train.epochs = 15
    cfg.train.batch_size = 32
    return cfg
