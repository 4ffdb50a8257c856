"""S004's speech CNN-LSTM on the generated corpus's audio: two 3 x 3 convolutions of 32 filters
(ReLU), a max-pool, an LSTM of 256 with recurrent dropout 0.2, a dense softmax output; log-mel
input, speaker-independent 1200/200/200 split.

    mmer reproduce s004_speech --corpus generated --seeds 3

The audio half of S004's hybrid on this corpus (``experiments/s004_hybrid_generated.py``): its
256-d utterance vector (``feat_audio``) is exported from the best checkpoint and classified by an
SVC, then fused with the s004_face run of the same seed. S004 reports its speech branch on
CMU-MOSI / MELD only, so this run tests the network, not the paper's number.

CPU-sized: the paper's layer sizes, 6 epochs of the 1.5 s clips (the shared generated protocol
trains 8).
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated_speech(base_config("s004_speech"))
    cfg.train.epochs = 6
    return cfg
