"""What the single-stream speech systems (``s004_speech``, ``crnn_ma``, ``speech_recipe``) share:
the config check that the model sees audio only, and encoder -> dropout -> output layer."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.registry import ENCODERS, check_names


def check_speech_config(cfg, inputs: tuple[str, ...] = ("audio",)) -> None:
    """Checks a speech system's ``model`` section (``modalities``, ``encoder``, ``dropout``).

    Args:
      inputs: the single streams the system accepts as its ``modalities`` (s004_speech also
        reads a stored frame stream, ``audio_feat``).

    Raises:
      ValueError: modalities other than one of ``inputs``, a dropout outside [0, 1).
      UnknownName: ``encoder`` is not in ``ENCODERS``.
    """
    if tuple(cfg.modalities) not in [(m,) for m in inputs]:
        allowed = " or ".join(repr((m,)) for m in inputs)
        raise ValueError(f"modalities={cfg.modalities} must be {allowed}: a speech model")
    dropout = getattr(cfg, "dropout", 0.0)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout} must be in [0, 1)")
    check_names(encoder=(ENCODERS, cfg.encoder))


def encode_and_classify(cfg, x: jnp.ndarray, mask: jnp.ndarray, num_classes: int, train: bool):
    """Inside a system's compact ``__call__``: ``ENCODERS[cfg.encoder](cfg.audio)`` on log-mels
    x [B, T, F] with mask [B, T] -> dropout (``cfg.dropout``, 0 when absent) -> ``head_out``.

    Returns:
      (logits [B, num_classes], ``{"feat_audio": [B, D]}``); the sub-modules (``enc_audio``,
      ``head_out``) belong to the calling system.
    """
    feat = ENCODERS[cfg.encoder](cfg.audio, name="enc_audio")(x, mask, train=train)
    z = nn.Dropout(getattr(cfg, "dropout", 0.0))(feat, deterministic=not train)
    return nn.Dense(num_classes, name="head_out")(z), {"feat_audio": feat}
