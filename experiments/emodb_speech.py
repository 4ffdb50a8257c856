"""EmoDB, speech only: a 2-D ResNet over log-mel, speaker-independent fixed split.

    mmer train --config experiments/emodb_speech.py --workdir runs/emodb \
        --config.data.manual_dir=/path/to/emodb

Split (builder config ``default``): train speakers 03 08 09 10 11 14, validation 12 13, test 15 16.
``--config.data.config=lso_fold3`` picks a leave-two-speakers-out fold instead. The EmoDB copy
this project is measured on (``$MMER_DATA_ROOT/emodb``) is 22,050 Hz, every clip cut to 2.000 s;
it is resampled to 16 kHz at build time, and scores on it are not comparable to published EmoDB
numbers.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.emodb_speech(base_config("quickstart", system="emodb_speech"))
    cfg.model.encoders = ml_collections.ConfigDict(
        dict(
            audio=dict(
                name="resnet2d", depth=(1, 1, 1), width=16, norm="batch", stem_stride=2,
                stem_pool=True,
            ),
        )
    )
    cfg.model.head_hidden = 64
    return cfg
