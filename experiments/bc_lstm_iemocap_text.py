"""bc-LSTM (Poria et al. 2017), S002's context baseline, on IEMOCAP transcripts (6 classes).

    mmer reproduce bc_lstm --corpus iemocap_text --seeds 3

Same protocol, utterance encoder (text-CNN over trainable 300-d embeddings), optimizer and budget as
experiments/s002_iemocap_text.py, so the difference to S002 is the model alone. S002's paper
reports bc-LSTM at accuracy 55.2 / weighted F1 54.9.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    return recipes.dialogue_text_recipe(corpora.iemocap_text_dialogues(base_config("bc_lstm")))
