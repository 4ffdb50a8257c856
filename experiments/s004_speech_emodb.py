"""S004's speech CNN-LSTM on EmoDB: two 3 x 3 convolutions of 32 filters (ReLU), a max-pool, an
LSTM of 256 with recurrent dropout 0.2, a dense softmax output; log-mel input (the paper names no
features), speaker-independent fixed split (6/2/2 speakers).

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce s004_speech --corpus emodb --seeds 3

S004 reports its speech branch on CMU-MOSI / MELD only (voice 83.72 % in its per-emotion table);
EmoDB is the speech corpus available here, so this run tests the network, not the paper's number.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    return corpora.emodb_speech(base_config("s004_speech"))
