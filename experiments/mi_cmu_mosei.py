"""MI (S000 §3.1) on CMU-MOSEI, the survey's own corpus for it: sentiment regression from the
aligned MOSEI feature pickles (text, audio and vision streams).

    mmer reproduce mi --corpus cmu_mosei --seeds 3

Needs the pickle (MulT ``mosei_senti_data.pkl`` or MMSA ``MOSEI/Processed/aligned_50.pkl``) in
``$MMER_CMU_MOSEI`` or ``$MMER_DATA_ROOT/cmu_mosei``; the harness skips this config when neither
holds one. Protocol (experiments/corpora.py ``cmu_mosei``): the standard folds, the score in
[-3, 3] as target with L1 loss, selection on validation MAE, test once, MMSA's metrics. Each stream
is a Dense projection, a 1-D convolution and a BiLSTM; the sequences are pooled to 8 common
segments; 9 cross- and intra-modal dynamic convolutions; residual gating. The survey's figures
(Acc-2 83.5, Acc-7 52.8, F1 83.1, MAE 0.568, Corr 0.712) come without features, sizes or
training settings, so they are a reference point, not a like-for-like target.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.cmu_mosei(base_config("mi"))
    cfg.train.lr = 1e-3
    m = cfg.model
    m.modalities = ["text_feat", "audio_feat", "vision_feat"]
    m.width = 64
    m.segments = 8
    m.num_heads = 4
    m.kernel_size = 3
    m.fc_hidden = 64
    m.dropout = 0.3
    return cfg
