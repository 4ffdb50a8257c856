"""Encoders; importing this package registers them in ``registry.ENCODERS``.

Per-modality encoders ``(x, mask, *, train) -> [B, D]``: ``resnet2d`` (audio features as an
image), ``cnn_lstm`` (frames), ``bilstm`` (tokens) for the quickstart; ``resnet_speech`` and
``resnet_lstm`` (S001), ``mobileface_lstm`` and ``conv1d_lstm`` (S003) in ``streams.py``.
``utterance`` is S002's utterance encoder over dialogue batches. The building blocks they are made
of (``resnet.py``, ``mobileface.py``, ``conv1d_audio.py``, ``text_cnn.py``, ``bilstm_attn.py``,
``conv3d.py``) each come with a frozen config dataclass that a ``model`` sub-section maps onto.
``cnn_lstm_speech`` (S004's speech CNN-LSTM with recurrent dropout) and ``crnn_ma`` (the survey's
CRNN-MA) are speech encoders in files of their own; ``inception_resnet_v2`` (S004's face
network, per frame, with its feature taps) too; so is ``speech_cnn`` (the speech recipe's small
GroupNorm CNN with statistics pooling). ``vgg16`` (the survey's face network, VGG16 per frame,
mean over valid frames) is in ``vgg16.py``. ``feature_lstm`` (``feature_stream.py``) encodes the
pre-extracted feature sequences of CMU-MOSI / CMU-MOSEI (``text_feat``, ``audio_feat``,
``vision_feat``). ``imported`` and ``imported_lstm`` (``imported.py``) hold a pretrained encoder
imported with ``mmer encoders import|fetch`` (its weights put in by the train layer).
"""

from mmer_jax.models.encoders import (  # noqa: F401
    audio,
    cnn_lstm_speech,
    crnn_ma,
    feature_stream,
    imported,
    inception_resnet_v2,
    speech_cnn,
    streams,
    text,
    utterance,
    vgg16,
    vision,
)
