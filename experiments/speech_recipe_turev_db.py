"""The speech recipe (system ``speech_recipe``) on TurEV-DB (Turkish acted single words; 4 classes,
6 speakers), leave-one-speaker-out.

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce speech_recipe --corpus turev_db --folds all

Read by the labelled-folder builder (config ``turev_db``, 44.1 kHz resampled to 16 kHz at build
time). Protocol: the build's 6 ``loso`` folds (test = speaker k, validation = speaker k+1, train =
the other four); the epoch is chosen on validation UAR, test scored once there. Speaker 1157 has
only angry and sad clips. Clips are 0.35-2.47 s: the few longer than ``data.max_audio_s`` = 2.0 s
get a random 2-s window in training and the centre one otherwise.

Same model and training recipe as ``speech_recipe_emodb.py`` (see its docstring for the
ingredients, chosen on EmoDB's validation folds); fewer epochs because each fold trains on ~1,100
clips instead of ~320.

What TurEV-DB's validation speakers said about the ingredients (6 folds, 1 seed, mean validation
UAR; fold 6 validates on speaker 1157, whose two classes make its UAR jump, so the mean without it
is given too): this config 63.3 (59.2 without fold 6); speaker mean and variance 60.2; SpecAugment
+ label smoothing 0.1 65.0 (59.7), within noise of this config and 6 points worse on EmoDB, so not
kept; pitch-shift copies 57.1. Later (same protocol): learning rate 5e-4 for 20 epochs 62.4;
channels 32-32-64-64 with weight decay 5e-2 60.1; 20 MFCCs instead of 64 log-mel bins 63.6 (test
50.3, so the validation lead is fold 6's noise); 32 mel bins 62.8. None clearly beats this config.
Nor does training on more speakers help the classical floor: refitting its logistic regression on
train + validation (5 speakers) at the C chosen on validation gives test UAR 55.6 +- 8.0 against
56.8 +- 8.0 (mean and variance normalised statistics), so a refit stage was not built.
Validation UAR peaks within the first few epochs and stays flat while the training loss keeps
falling: the network fits these single words' speakers rather than generalising across them.

Result (``reproductions/speech_recipe/turev_db_loso_folds.md``, 3 seeds x 6 folds, this 2-core
CPU): test UAR 55.1 +- 10.2 over folds, above the classical floor of ANCHORS.md (53.1 +- 13.6) but
not the issue's target (63.1), and level with the floor computed on speaker-normalised features
(``benchmarks/speaker_norm_floor.py``: 53.8 +- 8.4 mean, 56.8 +- 8.0 mean and variance). The
report's seed ensemble (the 3 runs' softmax averaged per fold) scores 55.8 +- 11.1 (validation
66.0).

Where the ceiling is (``benchmarks/turev_probes.py``: the same network and folds in a plain loop,
3 seeds, differences from the trainer listed in its docstring;
``benchmarks/results/turev-probes-cpu-2026-12-06.json``; mean over folds, validation / test UAR):

- Normalisation inside the network, per speaker (the evaluated speaker's own unlabelled clips,
  as ``data.speaker_norm`` does for the input): adaptive BatchNorm 61.5 / 54.6, speaker-wise
  BatchNorm in training and evaluation 63.3 / 54.2, against 63.4 / 54.8 for the recipe's network.
- pYIN pitch (semitones from the speaker's median) and voicing as two more input channels:
  66.0 / 55.0.
- Seed ensembles: 65.0 / 57.1 (recipe's network), 67.4 / 57.9 (pitch channels).
- Late fusion with logistic regression on utterance statistics + 10 pitch statistics (alone
  58.2 / 57.7, 4.6 points over the ANCHORS floor): with one weight chosen on the mean validation
  UAR over folds, at best 67.7 / 59.0 +- 8.2 (pitch channels, network weight 0.75); with each
  fold's weight chosen on its own validation speaker, 57.5-57.7 test for every network but
  adaptive BatchNorm (55.8). No cell of the JSON, chosen on validation or not, reaches 60 on test.

Measured once, outside the probe's JSON (same folds; UAR over the classes present):

- Test UAR averaged over the 18 runs has no trend from the first epoch to the last (between 49
  and 58, 54.6 after epoch 1 and 54.3 after epoch 15; read at every epoch by a draft of the probe
  for this diagnosis only): later epochs fit the four training speakers only, so a larger
  encoder was not tried.
- EmoDB's 4 shared classes (anger, neutral, happiness, sadness; 10 more speakers, German) added
  to every training split of the classical model (utterance statistics + logistic regression):
  validation / test 54.1 / 53.4 against 56.4 / 53.7 without them.
- openSMILE functionals (opensmile 2.6.0, speaker-mean normalised) + logistic regression:
  eGeMAPS 56.4 / 53.0, ComParE 2016 58.7 / 56.1.
"""

import ml_collections

from experiments import corpora, speech_recipe_emodb


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.turev_db_speech(speech_recipe_emodb.get_config())
    cfg.data.fold_protocol = "loso"
    cfg.train.epochs = 15
    cfg.train.batch_size = 32
    return cfg
