"""The speech recipe (system ``speech_recipe``) on a corpus of your own: any folder of labelled
audio read by the ``folder`` builder, leave-one-speaker-out.

    mmer data build folder --config my_corpus.json --manual_dir ~/corpora/mine
    mmer train --config experiments/speech_recipe_folder.py --workdir runs/mine_fold1 \\
        --config.data.config=my_corpus.json --config.data.fold=1

(README.md, "Bringing a corpus we have no builder for", has the whole example, tested by
``tests/train/test_bring_your_own_corpus.py``.) ``data.config`` names the JSON spec (default
``my_corpus.json`` in the current directory); ``data.fold`` = K (required: a folder build holds
no split of its own, only fold views) picks the fold of the build's ``loso`` protocol (test =
speaker group K, validation = group K+1, train = the rest; a manifest with a ``split`` column
also gives ``data.fold_protocol="official"``). Each fold is its own run: loop K over the folds
(the build's ``build_report.json`` lists them), or run every fold x seed with
``mmer reproduce speech_recipe --corpus folder --folds all``.

The model and training recipe are ``speech_recipe_emodb.py``'s (64 log-mel bins normalised per
speaker, a 1-D CNN with statistics pooling, AdamW with a cosine schedule) with TurEV-DB's epochs
(15); clips are read up to 4 s (a random 4-s window in training, the centre one otherwise).
``train.batch_size`` (16) must not exceed the train split of a fold: a small corpus needs a
smaller one, and the error says which size fits.
"""

import ml_collections

from experiments import speech_recipe_turev_db


def get_config() -> ml_collections.ConfigDict:
    cfg = speech_recipe_turev_db.get_config()  # folder corpus, loso folds, 15 epochs
    cfg.data.config = "my_corpus.json"
    cfg.data.manual_dir = ""  # the build's: `mmer data build folder --manual_dir DIR`
    cfg.data.max_audio_s = 4.0  # sentences rather than TurEV-DB's single words
    cfg.train.batch_size = 16
    return cfg
