"""S001 on the generated corpus: MFCC -> ResNet-18 speech branch, frames -> ResNet-34 per frame ->
LSTM video branch, concatenation -> dropout -> FC. Audio-only, video-only and fused variants at
the paper's dropout 0.3, and the fused model again at its other dropout, 0.5 (Table I).

    mmer reproduce s001 --corpus generated --seeds 3

CPU-sized: the ResNets keep the paper's depths (18 and 34 layers) but start at 16 channels instead
of 64, and the frame ResNet-34 starts with a stride-2 stem on the 32x32 frames, so the runs fit a
laptop CPU; `--config.model.audio_width=64` etc.
restores the paper's width on a GPU.
"""

import ml_collections

from experiments.common import generated_config
from experiments.common_s001 import add_av_variants, s001_model


def get_config() -> ml_collections.ConfigDict:
    cfg = add_av_variants(generated_config("s001"))
    cfg.model = s001_model(["audio", "frames"], width=16, video_stem_pool=False, lstm_hidden=64)
    return cfg
