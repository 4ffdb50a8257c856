"""S004's hybrid (``model.name = "s004_hybrid"``): classifiers fitted on the features of two
finished encoder runs, in two stages; every part of it is here:

| file | what |
|---|---|
| ``system.py`` | the ``model`` section; registers trainer, evaluator, predictor, reporter |
| ``context_lstm.py`` | S004's context LSTMs over a video's utterances (jax) |
| ``classifier.py`` | min-max / chi-square, one LIBSVM per channel, fuzzy-integral fusion |
| ``fit.py`` | one seed: export both runs' features, fit and score every row of the report |
| ``saved.py`` | the served row as arrays (no pickle), scored with numpy |
| ``trainer.py`` | ``mmer train`` (and ``mmer eval``) of one seed |
| ``predictor.py`` | ``mmer predict`` / ``mmer serve``: a file -> both encoders -> the saved row |
| ``report.py`` | ``mmer reproduce``'s report: S004's tables and claims over the seeds |

Importing this package imports nothing: :mod:`mmer_jax.fitted` imports ``system`` to register it.
"""
