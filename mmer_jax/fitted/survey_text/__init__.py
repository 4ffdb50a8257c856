"""The survey's text system (S000 §2.1, ``model.name = "survey_text"``), fitted without gradients
through the classifier; every part of it is here:

| file | what |
|---|---|
| ``system.py`` | the ``model`` section and its registration (trainer, evaluator, predictor) |
| ``word2vec.py`` | the JAX skip-gram trained on the training transcripts |
| ``classifier.py`` | K-means clusters, TF-IDF cluster emotion scores, logistic regression, grid |
| ``saved.py`` | the selected classifier as arrays (no pickle), scored with numpy |
| ``trainer.py`` | ``mmer train``: fit, select on validation, test once; ``mmer eval`` |
| ``predictor.py`` | ``mmer predict`` / ``mmer serve`` of a finished run |

Importing this package imports nothing: :mod:`mmer_jax.fitted` imports ``system`` to register it.
"""
