"""S001 on the generated corpus: MFCC -> ResNet-18 speech branch, frames -> ResNet-34 per frame ->
LSTM video branch, concatenation -> dropout -> FC. Audio-only, video-only and fused variants at
the paper's dropout 0.3, and the fused model again at its other dropout, 0.5 (Table I).

    mmer reproduce s001 --corpus generated --seeds 3

CPU-sized: the ResNets keep the paper's depths (18 and 34 layers) but start at 16 channels instead
of 64, and the frame ResNet-34 starts with a stride-2 stem on the 32x32 frames, so the runs fit a
laptop CPU; `--config.model.audio.width=64` etc.
restores the paper's width on a GPU.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = recipes.s001_av_variants(corpora.generated(base_config("s001")))
    return recipes.s001_model(
        cfg, ["audio", "frames"], width=16, video_stem_pool=False, lstm_hidden=64
    )
