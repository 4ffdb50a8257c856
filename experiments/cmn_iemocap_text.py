"""CMN (Hazarika et al. 2018), S002's memory baseline, on IEMOCAP transcripts (6 classes).

    mmer reproduce cmn --corpus iemocap_text --seeds 3

Speaker-specific GRU memories over the previous 40 turns, 3 hops (``speaker`` ids come from the
dialogue pipeline: 0 for the first speaker of a dialogue, 1 for the other). Same protocol, encoder,
optimizer and budget as experiments/s002_iemocap_text.py. S002's paper reports CMN at accuracy
56.5 / weighted F1 56.1.

One change from that recipe: ``data.min_count = 2``, so training words seen once map to
``<unk>`` and its embedding is trained (with ``min_count = 1`` it never occurs in training, yet
18.5 % of test utterances hold an unseen word; see ``s002_iemocap_text_paper.py``). Measured
(3 seeds, CPU, epoch chosen on validation weighted F1): validation 44.5 -> 45.8 mean
(43.8, 44.6, 45.1 -> 46.5, 44.3, 46.5), so it is kept; test weighted F1 49.8 ± 4.9 -> 53.2 ± 0.3.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = recipes.dialogue_text_recipe(corpora.iemocap_text_dialogues(base_config("cmn")))
    cfg.data.min_count = 2  # <unk> gets a trained embedding (the docstring has the figures)
    return cfg
