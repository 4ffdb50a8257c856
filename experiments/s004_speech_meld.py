"""S004's speech CNN-LSTM on MELD's clips (7 emotions, the official train/dev/test split): two
3 x 3 convolutions of 32 filters (ReLU), a max-pool, an LSTM of 256 with recurrent dropout 0.2, a
dense softmax output layer; log-mels of up to 4 s of each utterance's audio (the paper names no
features).

    MMER_MELD=/path/to/MELD.Raw mmer reproduce s004_speech --corpus meld --seeds 3

Reads the ``meld`` builder's ``av`` config (the mp4 clips; the face crops it also stores are the
input of ``experiments/s004_face_meld.py``). Utterances are classified one by one (no dialogue
context); the best epoch is chosen on dev weighted F1 and test is scored once. MELD's split
shares speakers (the Friends cast acts in every split), so this is not a speaker-independent
protocol: the report states the measured overlap. S004 trains on a 70/30 train/validation cut of
its training set; MELD's own dev split plays that part here.

S004 reports MELD only for its fused system (speech + face through chi-square selection, an LSTM
and LIBSVM: 90.06 % accuracy, Fig. 9) and a per-emotion speech accuracy of 83.72 % without naming
the corpus (Table 3): context for this single-branch run, not its target. No copy of MELD is held
here: the config is tested on a fixture in the release layout
(``tests/train/test_s004_corpus_configs.py``), and ``mmer reproduce`` skips it where the corpus is
absent, naming the files to fetch.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.face_video(base_config("s004_speech"), "meld", "MMER_MELD")
    cfg.variants = ml_collections.ConfigDict(dict(audio=["audio"]))
    cfg.primary_variant = "audio"
    cfg.model.modalities = ["audio"]
    cfg.protocol.split = "MELD official train/dev/test"
    cfg.protocol.speaker_independent = False
    cfg.train.epochs = 20
    cfg.train.batch_size = 32
    cfg.train.weight_decay = 1e-3  # as on EmoDB (experiments/s004_speech_emodb.py)
    return cfg
