"""MI (S000 §3.1) as a sentiment regressor: the generated corpus with a synthetic score per class
(``corpora.GENERATED_SENTIMENT``, [-3, 3]), the fused text + audio + frames model of
``mi_generated.py`` with a 1-output head, L1 loss, the epoch chosen on validation MAE.

    mmer reproduce mi --corpus generated_sentiment --seeds 3

The survey's MI figures are CMU-MOSEI's (Acc-2 83.5, Acc-7 52.8, MAE 0.568, Corr 0.712, with
pretrained features); CMU-MOSEI is not held here (``mi_cmu_mosei.py`` runs it where it is), so
this report exercises the same metrics on synthetic scores and compares with nothing.
"""

import ml_collections

from experiments import corpora, mi_generated


def get_config() -> ml_collections.ConfigDict:
    return corpora.generated_sentiment(mi_generated.get_config())
