"""S001 on the generated corpus: MFCC -> ResNet-18 speech branch, frames -> ResNet-34 per frame ->
LSTM video branch, concatenation -> dropout -> FC. Audio-only, video-only and fused variants.

    mmer reproduce s001 --corpus generated --seeds 3

CPU-sized: the ResNets keep the paper's depths (18 and 34 layers) but start at 16 channels instead
of 64, and the frame ResNet-34 starts with a stride-2 stem on the 32x32 frames, so the runs fit a
laptop CPU; `--config.model.audio_width=64` etc.
restores the paper's width on a GPU.
"""

import ml_collections

from experiments.common import generated_config


def get_config() -> ml_collections.ConfigDict:
    cfg = generated_config("s001")
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], fused=["audio", "frames"])
    )
    cfg.primary_variant = "fused"
    cfg.data.frontend = "mfcc"
    cfg.data.n_mfcc = 40
    cfg.model = ml_collections.ConfigDict(
        dict(
            name="s001",
            modalities=["audio", "frames"],
            dropout=0.3,
            audio_depth="resnet18",
            audio_width=16,
            audio_stem_stride=2,
            audio_stem_pool=True,
            video_depth="resnet34",
            video_width=16,
            video_stem_stride=1,
            video_stem_pool=False,
            norm="batch",
            lstm_hidden=64,
        )
    )
    return cfg
