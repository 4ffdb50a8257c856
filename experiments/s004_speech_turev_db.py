"""S004's speech CNN-LSTM on TurEV-DB (Turkish acted single words; 4 classes, 6 speakers),
selected on validation weighted F1 like ``s004_speech_emodb.py``.

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce s004_speech --corpus turev_db --folds all

Read by the labelled-folder builder (``data_prep/folder``, config ``turev_db``), 44.1 kHz resampled
to 16 kHz at build time; the build's 6 leave-one-speaker-out folds (``--folds all``), each fold's
validation speaker carved from its training speakers. The network is the paper's (two 3 x 3
convolutions of 32 filters, a max-pool, LSTM 256 with recurrent dropout 0.2); S004 reports speech
on CMU-MOSI / MELD only, so this run tests the network on a corpus held here, not the paper's
number.
Same training settings as ``crnn_ma_turev_db.py`` (20 epochs, batch 16, no augmentation).
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.turev_db_speech(base_config("s004_speech"))
    cfg.train.epochs = 20
    cfg.train.batch_size = 16
    cfg.train.weight_decay = 1e-3
    return cfg
