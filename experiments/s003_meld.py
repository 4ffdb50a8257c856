"""S003 on MELD (7 emotions, the official train/dev/test split), its paper's corpus.

    mmer reproduce s003 --corpus meld --seeds 3

Needs a MELD copy with the mp4 clips: ``MMER_MELD=/path`` or ``--config.data.manual_dir``; the
harness skips this config when neither holds one. MELD's split shares speakers (the Friends cast)
across train and test: the report states the measured overlap. The paper reports no final numbers,
only that the model is small and real-time; the report's model profile (parameters, FLOPs per clip,
single-clip CPU latency) is the comparison that matters. Architecture and augmentation:
experiments/common_s003.py.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = recipes.s003_face_video(corpora.face_video(base_config("s003"), "meld", "MMER_MELD"))
    cfg.protocol.split = "MELD official train/dev/test"
    cfg.protocol.speaker_independent = False
    return cfg
