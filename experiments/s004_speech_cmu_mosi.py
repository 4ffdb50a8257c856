"""S004's speech CNN-LSTM on CMU-MOSI's COVAREP frames, scored by binary polarity (S004's MOSI
protocol): two 3 x 3 convolutions of 32 filters (ReLU), a max-pool, an LSTM of 256 with recurrent
dropout 0.2, a dense output layer with one unit.

    MMER_CMU_MOSI=/path/to/mosi mmer reproduce s004_speech --corpus cmu_mosi --seeds 3

Needs the aligned pickle (MulT ``mosi_data.pkl`` or MMSA ``MOSI/Processed/aligned_50.pkl``) in
``$MMER_CMU_MOSI`` or ``$MMER_DATA_ROOT/cmu_mosi``; ``mmer reproduce`` skips the config when
neither holds one, naming the files to fetch. No copy is held here: the config is tested on a
fixture in the MulT layout (``tests/train/test_s004_corpus_configs.py``).

The pickles hold features, not audio: the network reads the ``audio_feat`` stream ([T = 50, 74]
COVAREP frames, word-aligned, as stored) as its time x feature image, where the other corpora
give it log-mels. Protocol (experiments/corpora.py ``cmu_mosi``, the project's MOSI path): the
standard folds, the sentiment score in [-3, 3] as a regression target with L1 loss, the best
epoch by validation MAE, test scored once. S004 keeps only positive / negative: its measure is
the reported binary polarity, Acc-2 and F1 (both the has-0 and the non-0 variants; the paper
does not say how it treats a score of 0), read from the sign of the predicted score.

S004 reports MOSI only for its fused speech + face system (87.56 % accuracy, Fig. 9) and a
per-emotion speech accuracy of 83.72 % without naming the corpus (Table 3): context for this
single-branch run, not its target. S004's face half has no MOSI counterpart here: the pickles
hold FACET facial-feature vectors per step, not images, so Inception-ResNet-v2 has nothing to
read (and no stand-in network is substituted).
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.cmu_mosi(base_config("s004_speech"))
    cfg.variants = ml_collections.ConfigDict(dict(audio=["audio_feat"]))
    cfg.primary_variant = "audio"
    cfg.model.modalities = ["audio_feat"]
    return cfg
