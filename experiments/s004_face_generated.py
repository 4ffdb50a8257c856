"""S004's face branch on the generated corpus: Inception-ResNet-v2 on every 32 x 32 drawn face,
the fully connected layer's features (S004's choice) averaged over the clip, a dense softmax
output layer.

    mmer reproduce s004_face --corpus generated --seeds 3

The generated frames are drawn faces filling the frame, so they stand in for face crops (model
modality ``frames``). Video alone puts the six classes in three pairs ({neutral, happy},
{sad, fearful}, {angry, surprised}) told apart only by a weak within-pair cue (a linear model
on the 16 x 16 mean image: 47-55 % test accuracy, the builder's
note). This run tests the network, not S004's 85.75 % (on MOSI/MELD faces).

CPU-sized: the stem, Reduction-A and -B keep their layout at 1/8 of the channels, one block each
of Inception-ResNet-A, -B and -C (the paper: 5, 10, 5), "SAME" padding so 32 x 32 does not
shrink to nothing, FC of 128. Other taps: `--config.model.face.tap=avgpool` (or conv,
dropout); every tap is also returned in the model's aux as ``tap_<name>``. With S003's random
spatial crop of the frames (edge-pad 2 px, crop back to 32 x 32, one offset per clip).
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated_faces(base_config("s004_face"))
    cfg.model.face.width = 0.125
    cfg.model.face.blocks = [1, 1, 1]
    cfg.model.face.padding = "SAME"
    # S003's crop on the same corpus. Chosen on validation: seed 0, best validation weighted F1
    # 0.23 without it (training accuracy 0.75; validation near chance for 6 epochs), 0.36 with.
    cfg.data.augment = [{"name": "random_crop_images", "padding": 2}]
    return cfg
