"""S003 on CREMA-D audio-visual (6 emotions, 91 actors, fixed actor split), the corpus its paper
planned next.

    mmer reproduce s003 --corpus crema_d --seeds 3

Needs a CREMA-D copy (AudioWAV/ and VideoFlash/ or mp4s): ``MMER_CREMA_D=/path`` or
``--config.data.manual_dir``; the harness skips this config when neither holds one. Architecture
and augmentation: experiments/common_s003.py.
"""

import ml_collections

from experiments.common_s003 import s003_av_config


def get_config() -> ml_collections.ConfigDict:
    cfg = s003_av_config("crema_d", "av", "MMER_CREMA_D")
    cfg.protocol.split = "CREMA-D fixed actor split of the av builder config"
    return cfg
