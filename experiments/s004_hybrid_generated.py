"""S004's hybrid on the generated corpus: the trained encoders' features -> S004's context LSTMs
(one per modality over the utterances of a video, one across the spliced modalities) ->
chi-square (top 50 %) -> one LIBSVM per channel -> Sugeno / Choquet fuzzy-integral fusion, and
S004's Table 2 (each Inception-ResNet-v2 layer's features alone -> LIBSVM).

    mmer reproduce s004_speech --corpus generated --seeds 3
    mmer reproduce s004_face --corpus generated --seeds 3
    python -m experiments.s004_hybrid --corpus generated --seeds 3

The runner (``experiments/s004_hybrid.py``) reads the finished seed runs of both encoders under
``--workdir`` (``<workdir>/<system>/generated/seed<k>``), exports their features from each best
checkpoint (:mod:`mmer_jax.train.export_features`), pairs speech seed k with face seed k, and
fits :class:`mmer_jax.classic.hybrid.S004Hybrid` with and without chi-square, on the raw
channels (``context="none"``) and on the context LSTMs' outputs
(:mod:`mmer_jax.train.context_lstm`) when ``context`` asks for them, so the report shows both.

Channels: speech = the CNN-LSTM's 256-d utterance vector (``feat_audio``), face = the FC layer's
features (``tap_fc``, S004's choice, fixed before looking at any result). ``context``:
``"within+across"`` (S004's description: an LSTM within each modality, chi-square per modality,
the modalities spliced, an LSTM across them, its output -> LIBSVM), ``"within"`` (the
per-modality LSTMs only) or ``"none"``. The generated corpus has no videos of several utterances
(no ``dialogue_id``): every sequence has length 1, so the LSTMs learn a per-utterance transform
of the features, not context. This is a separate function name (not ``get_config``): the file
configures no trained system of its own.
"""

import ml_collections


def get_hybrid_config() -> ml_collections.ConfigDict:
    """The hybrid's settings on the generated corpus (see the module docstring)."""
    cfg = ml_collections.ConfigDict()
    cfg.corpus = "generated"
    cfg.speech = ml_collections.ConfigDict(dict(system="s004_speech", key="feat_audio"))
    cfg.face = ml_collections.ConfigDict(dict(system="s004_face", key="tap_fc"))
    # Table 2: every tap of the face network, each alone -> LIBSVM.
    cfg.face_taps = ["tap_conv", "tap_avgpool", "tap_dropout", "tap_fc"]
    cfg.chi2_keep = 0.5  # S004: the top 50 % of the chi-square scores
    # SVC grid, chosen on validation weighted F1 only.
    cfg.c_grid = [0.1, 1.0, 10.0, 100.0]
    cfg.gamma_scales = [0.1, 1.0, 10.0]  # multiples of 1 / (D * var(x_train))
    # S004's within-modality and across-modality LSTMs ("Feature Selection"): within+across.
    cfg.context = "within+across"
    # Every context LSTM (mmer_jax.train.context_lstm.ContextConfig); epoch by validation
    # weighted F1. S004: 256-unit LSTMs, mini-batches of 50 videos.
    cfg.context_lstm = ml_collections.ConfigDict(dict(
        hidden=256, epochs=30, batch_size=50, learning_rate=1e-3, dropout=0.5,
        bidirectional=False))
    return cfg
