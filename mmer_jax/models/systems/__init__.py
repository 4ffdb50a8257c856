"""The systems; importing this package registers them in ``registry.SYSTEMS``.

A system with private parts is a package of its own (``mi/layers.py``,
``tsra/losses.py``, ``mgmnet/parts.py``).
Systems fitted by trainers of their own (``survey_text``, ``s004_hybrid``) are in
:mod:`mmer_jax.fitted`.

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
| ``vgg16_face`` | ``vgg16_face.py`` | survey §2.2: VGG16 per face crop, mean over frames |
| ``s004_face`` | ``s004_face.py`` | S004's Inception-ResNet-v2 face branch, its feature taps |
| ``mi`` | ``mi/`` | survey §3.1: cross-modal dynamic convolution + residual gating |
| ``tsra`` | ``tsra/`` | survey §3.2: shared/private/fused spaces, 4 losses, stacked LSTM |
| ``mgmnet`` | ``mgmnet/`` | survey §3.3: text-bridged attention, bilinear shift, IB, context |
| ``ssl_probe`` | ``ssl_probe.py`` | frozen pretrained encoder: weighted layer sum, pooled, MLP |
| ``ssl_finetune`` | ``ssl_finetune.py`` | imported speech encoder fine-tuned, weighted states |
"""

from mmer_jax.models.systems import (  # noqa: F401
    baselines,
    crnn_ma,
    mgmnet,
    mi,
    quickstart,
    s001,
    s002,
    s003,
    s004_face,
    s004_speech,
    speech_recipe,
    ssl_finetune,
    ssl_probe,
    tsra,
    vgg16_face,
)
