"""Helpers shared by the corpus builders: media decoding, build reports, speaker folds.

Nothing here imports TensorFlow or ``mmer_jax``; every builder in ``data_prep/`` may use it.
"""
