"""S001 on RAVDESS audio-visual speech (1,440 clips, 8 emotions): MFCC -> ResNet-18, frames ->
ResNet-34 -> LSTM, concatenation -> dropout -> FC; audio-only, video-only and fused at dropout 0.3,
and fused again at 0.5 (Table I).

    mmer reproduce s001 --corpus ravdess --seeds 3

The paper does not state its split; we use RAVDESS's actor split (speaker independent) from the
builder's ``av`` config. It trains on all 8 classes and prints 6-class matrices (no calm, no
disgust): the report adds that 6-class view of our 8-class confusion (``class_views.paper6``), so
both can be read beside the paper's Figs. 5-7. Paper widths (64 base channels); on a CPU lower them
with ``--config.model.audio.width=16 --config.model.video.width=16``.

Needs a RAVDESS copy: ``MMER_RAVDESS=/path/with/Actor_XX`` or ``--config.data.manual_dir``; the
harness skips this config when neither holds one.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config
from mmer_jax.reproduce.papers import RAVDESS_S001_CLASSES


def get_config() -> ml_collections.ConfigDict:
    cfg = recipes.s001_av_variants(base_config("s001"))
    cfg.data.corpus = "ravdess"
    cfg.data.config = "av"
    cfg.data.manual_dir = corpora.manual_dir("ravdess", "MMER_RAVDESS")
    cfg.class_views = ml_collections.ConfigDict(dict(paper6=list(RAVDESS_S001_CLASSES)))
    recipes.s001_model(cfg, ["audio", "frames"], width=64, video_stem_pool=True, lstm_hidden=128)
    cfg.train.epochs = 30
    cfg.train.batch_size = 16
    cfg.protocol.split = "RAVDESS actor split of the av builder config (speaker independent)"
    return cfg
