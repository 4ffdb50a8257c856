"""CMN (Hazarika et al. 2018), S002's memory baseline, on IEMOCAP transcripts (6 classes).

    mmer reproduce cmn --corpus iemocap_text --seeds 3

Speaker-specific GRU memories over the previous 40 turns, 3 hops (``speaker`` ids come from the
dialogue pipeline: 0 for the first speaker of a dialogue, 1 for the other). Same protocol, encoder,
optimizer and budget as experiments/s002_iemocap_text.py. S002's paper reports CMN at accuracy
56.5 / weighted F1 56.1.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    return recipes.dialogue_text_recipe(corpora.iemocap_text_dialogues(base_config("cmn")))
