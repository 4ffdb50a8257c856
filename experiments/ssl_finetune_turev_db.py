"""Whisper base fine-tuned end to end (system ``ssl_finetune``) on TurEV-DB (Turkish single
words, 4 classes), leave-one-speaker-out folds.

    mmer encoders fetch whisper-base
    MMER_DATA_ROOT=/path/to/corpora \
        mmer reproduce ssl_finetune --corpus turev_db --folds all --seeds 3

Protocol: the build's ``loso`` folds (test = one of 6 speakers; validation and train from the
others as the build's fold definitions say), the epoch chosen on validation UAR, test scored
once; no speaker normalisation.

Settings are EmoDB's recipe (``ssl_finetune_emodb.py``: frozen stem, layer-wise learning-rate
decay 0.8, warm-up then cosine, AdamW, two time masks) with TurEV-DB's clip length: the words
are 0.35-2.47 s, so every clip is read whole (``data.max_audio_s`` = 2.5 s) and encoded at its
own length (18-124 Whisper positions), which makes a fold affordable on a CPU (minutes, not
hours). The warm-up covers about 10 % of the steps (~70 steps per epoch).
"""

import ml_collections

from experiments import corpora, ssl_finetune_emodb


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.turev_db_speech(ssl_finetune_emodb.get_config())
    cfg.data.fold_protocol = "loso"
    cfg.data.max_audio_s = 2.5
    cfg.train.epochs = 10
    cfg.train.warmup_steps = 70
    return cfg
