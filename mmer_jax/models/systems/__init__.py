"""The systems; importing this package registers them in ``registry.SYSTEMS``.

| name | file | what |
|---|---|---|
| ``quickstart`` | ``quickstart.py`` | registered encoder per modality + fusion + head |
| ``s001`` | ``s001.py`` | ResNet-18 speech + ResNet-34/LSTM video, concatenation |
| ``s002`` | ``s002.py`` | utterance encoder + Bi-LSTM context + attention-residual fusion |
| ``s003`` | ``s003.py`` | MobileFaceNet-style CNN + LSTM per stream, concatenation |
| ``text_cnn``, ``bc_lstm``, ``cmn`` | ``baselines.py`` | S002's comparison baselines |
| ``s004_speech`` | ``s004_speech.py`` | S004's speech CNN-LSTM (recurrent dropout) + dense output |
| ``crnn_ma`` | ``crnn_ma.py`` | survey CRNN-MA: CNN + self-attention, LSTM + multi-dim attention |
| ``speech_recipe`` | ``speech_recipe.py`` | speech from scratch: SpecAugment + ``speech_cnn`` |
"""

from mmer_jax.models.systems import (  # noqa: F401
    baselines,
    crnn_ma,
    quickstart,
    s001,
    s002,
    s003,
    s004_speech,
    speech_recipe,
)
