"""TSRA (S000 §3.2) as a sentiment regressor: the generated corpus with a synthetic score per class
(``corpora.GENERATED_SENTIMENT``, [-3, 3]), the fused text + audio + frames model of
``tsra_generated.py`` with a 1-output head, L1 loss, the epoch chosen on validation MAE.

    mmer reproduce tsra --corpus generated_sentiment --seeds 3

The survey reports TSRA on GMSA, a game-scene sentiment corpus that is not public, with the metrics
this report gives (Acc-2/3/5, F1, MAE, Corr): no figure here is comparable with it.
"""

import ml_collections

from experiments import corpora, tsra_generated


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated_sentiment(tsra_generated.get_config())
    # The budget its committed report ran with (selected epochs 3, 8 and 7 of 8); the
    # classification config's later choice of 20 epochs was not rerun here.
    cfg.train.epochs = 8
    return cfg
