"""S004's hybrid on the generated corpus: the trained encoders' features -> S004's context LSTMs
(one per modality over the utterances of a video, one across the spliced modalities) ->
chi-square (top 50 %) -> one LIBSVM per channel -> Sugeno / Choquet fuzzy-integral fusion, and
S004's Table 2 (each Inception-ResNet-v2 layer's features alone -> LIBSVM).

    mmer reproduce s004_speech --corpus generated --seeds 3
    mmer reproduce s004_face --corpus generated --seeds 3
    mmer reproduce s004_hybrid --corpus generated --seeds 3

Seed k of the hybrid reads seed k of both encoders under the same ``--workdir``
(``<workdir>/<system>/generated/seed<k>``; ``model.speech.run`` / ``model.face.run`` name other
runs), exports their features from each best checkpoint, and fits
:class:`mmer_jax.fitted.s004_hybrid.classifier.S004Hybrid` with and without chi-square, on the
raw channels (context "none") and on the context LSTMs' outputs when ``context`` asks for them,
so the report shows both (:mod:`mmer_jax.fitted.s004_hybrid`; every default is in its
``system.py``).

Channels: speech = the CNN-LSTM's 256-d utterance vector (``feat_audio``), face = the FC layer's
features (``tap_fc``, S004's choice, fixed before looking at any result). ``context``:
``"within+across"`` (S004's description: an LSTM within each modality, chi-square per modality,
the modalities spliced, an LSTM across them, its output -> LIBSVM), ``"within"`` (the
per-modality LSTMs only) or ``"none"``. The generated corpus has no videos of several utterances
(no ``dialogue_id``): every sequence has length 1, so the LSTMs learn a per-utterance transform
of the features, not context. The row ``mmer predict`` / ``serve`` answer with
(``model.served_row``): Choquet fusion with chi-square on the raw channels.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    # The encoders' corpus settings (experiments/s004_{speech,face}_generated.py): audio and the
    # frames, read together by prediction.
    cfg = corpora.generated(base_config("s004_hybrid"))
    cfg.variants = ml_collections.ConfigDict(dict(fused=["audio", "frames"]))
    cfg.primary_variant = "fused"
    cfg.model.modalities = ["audio", "frames"]
    cfg.model.speech.system, cfg.model.speech.key = "s004_speech", "feat_audio"
    cfg.model.face.system, cfg.model.face.key = "s004_face", "tap_fc"
    # Table 2: every tap of the face network, each alone -> LIBSVM.
    cfg.model.face_taps = ["tap_conv", "tap_avgpool", "tap_dropout", "tap_fc"]
    cfg.model.chi2_keep = 0.5  # S004: the top 50 % of the chi-square scores
    # SVC grid, chosen on validation weighted F1 only.
    cfg.model.c_grid = [0.1, 1.0, 10.0, 100.0]
    cfg.model.gamma_scales = [0.1, 1.0, 10.0]  # multiples of 1 / (D * var(x_train))
    # S004's within-modality and across-modality LSTMs ("Feature Selection"): within+across.
    cfg.model.context = "within+across"
    # Every context LSTM; epoch by validation weighted F1. S004: 256-unit LSTMs, mini-batches
    # of 50 videos.
    cfg.model.context_lstm = ml_collections.ConfigDict(dict(
        hidden=256, epochs=30, batch_size=50, learning_rate=1e-3, dropout=0.5,
        bidirectional=False))
    return cfg
