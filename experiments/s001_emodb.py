"""S001's speech branch on EmoDB: MFCC -> ResNet-18 -> FC (no video in EmoDB).

    mmer reproduce s001 --corpus emodb --seeds 3

ResNet-18 depth with 16 base channels (CPU-sized; the paper's 64 via --config.model.audio_width=64).
"""

import ml_collections

from experiments.common import emodb_config
from experiments.common_s001 import s001_model


def get_config() -> ml_collections.ConfigDict:
    cfg = emodb_config("s001")
    cfg.data.frontend = "mfcc"
    cfg.data.n_mfcc = 40
    cfg.model = s001_model(["audio"], width=16, video_stem_pool=False, lstm_hidden=64)
    return cfg
