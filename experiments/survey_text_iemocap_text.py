"""The survey's text system (S000 §2.1: Word2Vec skip-gram -> K-means -> TF-IDF-weighted cluster
emotion scores -> logistic regression) on IEMOCAP transcripts (6 classes).

    MMER_DATA_ROOT=/path/to/corpora mmer reproduce survey_text --corpus iemocap_text --seeds 3

Fitted without gradients through the classifier (``mmer_jax.fitted.survey_text``): the JAX
skip-gram (100-d, window 5, 5 negatives, 5 epochs) learns word vectors from the training
transcripts; the number of clusters (10 to 800), the logistic regression's C and whether the
TF-IDF vector is concatenated are chosen on the validation dialogues (the model section's
defaults, ``mmer_jax/models/systems/survey_text.py``); the test dialogues are scored once. Each
utterance is classified alone (no dialogue context). The survey reports accuracy 0.80 on ISEAR, a
different corpus; there is no IEMOCAP number to compare with.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    return corpora.iemocap_text_dialogues(base_config("survey_text"))
