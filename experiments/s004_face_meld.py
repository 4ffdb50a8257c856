"""S004's face branch on MELD (7 emotions, the official train/dev/test split): Inception-ResNet-v2
on every 64 x 64 face crop the builder stores (8 per clip), the fully connected layer's features
(S004's choice, its Table 2) averaged over the clip's valid crops, a dense softmax output layer.

    MMER_MELD=/path/to/MELD.Raw mmer reproduce s004_face --corpus meld --seeds 3

Reads the ``meld`` builder's ``av`` config (model modality ``face``: the crops found by the
builder's face detector; the builder also stores the whole 112 x 112 frames as ``frames``, which
``s004_face`` accepts as well). The paper's network: full width, 5 / 10 / 5
Inception-ResNet-A / -B / -C blocks, trained from scratch (no pretrained weights are fetched),
"SAME" padding because the paper's "VALID" layout shrinks a 64 x 64 crop to nothing before
Reduction-B. Meant for an accelerator. Best epoch by dev weighted F1, test scored once. MELD's
split shares speakers (the Friends cast acts in every split): not speaker-independent, and the
report states the measured overlap. S004 trains on a 70/30 train/validation cut of its training
set; MELD's own dev split plays that part here.

S004 reports MELD only for its fused system (90.06 % accuracy, Fig. 9), the face features of
each Inception-ResNet-v2 layer (fully connected 85.75 %, Table 2) and a per-emotion video
accuracy of 80.19 % (Table 3), the last two without naming the corpus: context, not a target for
this single-branch run. No copy of MELD is held here: the config is tested on a fixture in the
release layout (``tests/train/test_s004_corpus_configs.py``), and ``mmer reproduce`` skips it
where the corpus is absent, naming the files to fetch.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.face_video(base_config("s004_face"), "meld", "MMER_MELD")
    cfg.variants = ml_collections.ConfigDict(dict(face=["face"]))
    cfg.primary_variant = "face"
    cfg.model.modalities = ["face"]
    cfg.model.face.padding = "SAME"
    cfg.protocol.split = "MELD official train/dev/test"
    cfg.protocol.speaker_independent = False
    cfg.train.epochs = 20
    cfg.train.batch_size = 16
    return cfg
