"""The weighted-layer probe over frozen Whisper base (``ssl_probe``) on TurEV-DB (Turkish single
words, 4 classes), leave-one-speaker-out folds.

    mmer encoders fetch whisper-base
    MMER_DATA_ROOT=/path/to/corpora mmer reproduce ssl_probe --corpus turev_db --folds all --seeds 3

Protocol: the build's ``loso`` folds (6 speakers; test = one speaker, validation and train from
the others as the build's fold definitions say), the epoch chosen on validation UAR, test scored
once; no speaker normalisation. Clips are 0.35-2.47 s words (18-124 Whisper positions), each
encoded inside a zero-padded 30-s window. Settings are EmoDB's (``ssl_probe_emodb.py``, which
gives the validation figures that chose the padded window).
"""

import ml_collections

from experiments import corpora, ssl_probe_emodb


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.encoder_features(corpora.turev_db_speech(ssl_probe_emodb.get_config()))
    cfg.data.fold_protocol = "loso"
    return cfg
