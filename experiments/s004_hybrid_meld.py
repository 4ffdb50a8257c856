"""S004's hybrid on MELD (7 emotions, official split), its paper's corpus: the same pipeline and
settings as ``s004_hybrid_generated.py`` (context LSTMs, chi-square top 50 %, LIBSVM per channel,
Sugeno / Choquet fusion), on the features of the MELD encoder runs.

    mmer reproduce s004_speech --corpus meld --seeds 3
    mmer reproduce s004_face --corpus meld --seeds 3
    python -m experiments.s004_hybrid --corpus meld --seeds 3

MELD's utterances belong to dialogues (``dialogue_id``, ordered by ``turn`` in the exports), so
here the context LSTMs run over real sequences of utterances; S004 reports fused accuracy 90.06 %
on MELD (Fig. 9). No MELD copy is held here: the encoder configs are tested on fixtures, and this
runner needs their finished runs.
"""

import ml_collections

from experiments.s004_hybrid_generated import get_hybrid_config as _generated_config


def get_hybrid_config() -> ml_collections.ConfigDict:
    """The generated corpus's hybrid settings, on MELD (see the module docstring)."""
    cfg = _generated_config()
    cfg.corpus = "meld"
    return cfg
