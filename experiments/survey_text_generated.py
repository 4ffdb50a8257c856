"""The survey's text system (S000 §2.1: Word2Vec skip-gram -> K-means -> TF-IDF-weighted cluster
emotion scores -> logistic regression) on the generated corpus's transcripts (6 classes,
speaker-independent 1200/200/200).

    mmer reproduce survey_text --corpus generated --seeds 3

The same fitting as ``survey_text_iemocap_text.py`` (clusters, C and the TF-IDF option chosen on
validation, test scored once). The generated transcripts draw on a vocabulary of about a hundred
words in which, by design, text alone confuses one pair of classes: the run shows what the
survey's pipeline makes of a corpus where word identity carries most of the signal. The survey's
own figure is on ISEAR (not held here).
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated(base_config("survey_text"))
    cfg.variants = ml_collections.ConfigDict(dict(text=["text"]))
    cfg.primary_variant = "text"
    cfg.model.modalities = ["text"]
    return cfg
