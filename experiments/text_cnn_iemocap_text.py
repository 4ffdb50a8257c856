"""Text-CNN (Kim 2014), S002's no-context baseline, on IEMOCAP transcripts (6 classes).

    mmer reproduce text_cnn --corpus iemocap_text --seeds 3

Classifies every utterance alone (dialogue batches, but no context). Same protocol, encoder,
optimizer and budget as experiments/s002_iemocap_text.py. S002's paper reports CNN at accuracy
48.9 / weighted F1 48.1.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    return recipes.dialogue_text_recipe(corpora.iemocap_text_dialogues(base_config("text_cnn")))
