"""S003 on the generated corpus: MobileFaceNet-like CNN per frame + 1-D CNN audio, LSTMs over
time, concatenation + FC. The generated frames are already face crops, so the face stream and
the whole-frame stream would see the same pixels: only the frame stream is used here.

    mmer reproduce s003 --corpus generated --seeds 3
"""

import ml_collections

from experiments.common import generated_config


def get_config() -> ml_collections.ConfigDict:
    cfg = generated_config("s003")
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], fused=["frames", "audio"])
    )
    cfg.primary_variant = "fused"
    cfg.model = ml_collections.ConfigDict(
        dict(name="s003", modalities=["frames", "audio"], dropout=0.3, lstm_hidden=64, fc_hidden=64)
    )
    return cfg
