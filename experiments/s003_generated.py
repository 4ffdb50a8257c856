"""S003 on the generated corpus: MobileFaceNet-like CNN per frame + 1-D CNN audio, LSTMs over
time, concatenation + FC. The generated frames are already face crops, so the face stream and
the whole-frame stream would see the same pixels: only the frame stream is used here.

    mmer reproduce s003 --corpus generated --seeds 3

With the paper's augmentation: a random spatial crop of the frames (edge-pad 2 px, crop back to
32x32, one offset per clip) and pitch-shifted audio copies (+-2 semitones, computed once per
prepared corpus). The copies triple the training clips per epoch, so 4 epochs here take 1.5x the
steps of the 8 unaugmented epochs of the other generated configs.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated(base_config("s003"))
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], fused=["frames", "audio"])
    )
    cfg.data.augment = [{"name": "random_crop_images", "padding": 2}]
    cfg.data.offline_augment = recipes.PITCH_SHIFT_COPIES
    cfg.train.epochs = 4
    cfg.model.modalities = ["frames", "audio"]
    cfg.model.lstm_hidden = 64
    cfg.model.fc_hidden = 64
    return cfg
