"""Encoders; importing this package registers them in ``registry.ENCODERS``.

Per-modality encoders ``(x, mask, *, train) -> [B, D]``: ``resnet2d`` (audio features as an
image), ``cnn_lstm`` (frames), ``bilstm`` (tokens) for the quickstart; ``resnet_speech`` and
``resnet_lstm`` (S001), ``mobileface_lstm`` and ``conv1d_lstm`` (S003) in ``streams.py``.
``utterance`` is S002's utterance encoder over dialogue batches. The building blocks they are made
of (``resnet.py``, ``mobileface.py``, ``conv1d_audio.py``, ``text_cnn.py``, ``bilstm_attn.py``,
``conv3d.py``) each come with a frozen config dataclass that a ``model`` sub-section maps onto.
"""

from mmer_jax.models.encoders import audio, streams, text, utterance, vision  # noqa: F401
