"""Encoders; importing this package registers them in ``registry.ENCODERS``.

Per-modality encoders ``(x, mask, *, train) -> [B, D]``: ``resnet2d`` (audio features as an
image), ``cnn_lstm`` (frames), ``bilstm`` (tokens). ``utterance`` is S002's utterance encoder over
dialogue batches. The building blocks the seed systems assemble (``resnet.py``, ``mobileface.py``,
``conv1d_audio.py``, ``text_cnn.py``, ``bilstm_attn.py``, ``conv3d.py``) each come with a frozen
config dataclass that a ``model`` sub-section maps onto.
"""

from mmer_jax.models.encoders import audio, text, utterance, vision  # noqa: F401
