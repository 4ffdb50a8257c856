"""S003 on CREMA-D audio-visual (6 emotions, 91 actors, fixed actor split), the corpus its paper
planned next.

    mmer reproduce s003 --corpus crema_d --seeds 3

Needs a CREMA-D copy (AudioWAV/ and VideoFlash/ or mp4s): ``MMER_CREMA_D=/path`` or
``--config.data.manual_dir``; the harness skips this config when neither holds one. Architecture
and augmentation: experiments/common_s003.py.
"""

import ml_collections

from experiments import corpora, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = recipes.s003_face_video(corpora.face_video(base_config("s003"), "crema_d",
                                                     "MMER_CREMA_D"))
    cfg.protocol.split = "CREMA-D fixed actor split of the av builder config"
    return cfg
