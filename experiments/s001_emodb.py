"""S001's speech branch on EmoDB: MFCC -> ResNet-18 -> FC (no video in EmoDB).

    mmer reproduce s001 --corpus emodb --seeds 3

ResNet-18 depth with 16 base channels (CPU-sized; the paper's 64 via --config.model.audio_width=64).
"""

import ml_collections

from experiments.common import emodb_config


def get_config() -> ml_collections.ConfigDict:
    cfg = emodb_config("s001")
    cfg.data.frontend = "mfcc"
    cfg.data.n_mfcc = 40
    cfg.model = ml_collections.ConfigDict(
        dict(
            name="s001",
            modalities=["audio"],
            dropout=0.3,
            audio_depth="resnet18",
            audio_width=16,
            audio_stem_stride=2,
            audio_stem_pool=True,
            norm="batch",
            lstm_hidden=64,
        )
    )
    return cfg
