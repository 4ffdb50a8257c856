"""S004's hybrid on MELD (7 emotions, official split), its paper's corpus: the same pipeline and
settings as ``s004_hybrid_generated.py`` (context LSTMs, chi-square top 50 %, LIBSVM per channel,
Sugeno / Choquet fusion), on the features of the MELD encoder runs.

    mmer reproduce s004_speech --corpus meld --seeds 3
    mmer reproduce s004_face --corpus meld --seeds 3
    mmer reproduce s004_hybrid --corpus meld --seeds 3

MELD's utterances belong to dialogues (``dialogue_id``, ordered by ``turn`` in the exports), so
here the context LSTMs run over real sequences of utterances; S004 reports fused accuracy 90.06 %
on MELD (Fig. 9). No MELD copy is held here: the encoder configs are tested on fixtures, and this
system needs their finished runs.
"""

import ml_collections

from experiments import corpora
from experiments.s004_hybrid_generated import get_config as _generated_config
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    # The encoders' corpus settings (experiments/s004_{speech,face}_meld.py); the model section
    # is the generated corpus's.
    cfg = corpora.face_video(base_config("s004_hybrid"), "meld", "MMER_MELD")
    cfg.model = _generated_config().model
    cfg.primary_variant = "fused"
    cfg.variants = ml_collections.ConfigDict(dict(fused=["audio", "face"]))
    cfg.model.modalities = ["audio", "face"]
    cfg.protocol.split = "MELD official train/dev/test"
    cfg.protocol.speaker_independent = False
    return cfg
