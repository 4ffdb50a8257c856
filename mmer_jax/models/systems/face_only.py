"""What the single-stream face systems (``vgg16_face``, ``s004_face``) share: the config check
that the model sees one image stream, and encoder -> dropout -> output layer.

The stream is ``face`` (face crops, e.g. RAVDESS/CREMA-D ``av``) or ``frames``: the generated
corpus stores drawn faces that fill the frame, so there the frames are the face crops.
"""

from __future__ import annotations

import flax.linen as nn

FACE_STREAMS = ("face", "frames")


def check_face_config(cfg) -> None:
    """Checks a face system's ``model`` section (``modalities``, ``dropout``).

    Raises:
      ValueError: modalities other than one of ("face",) / ("frames",), a dropout outside [0, 1).
    """
    if len(cfg.modalities) != 1 or cfg.modalities[0] not in FACE_STREAMS:
        raise ValueError(f"modalities={cfg.modalities} must be ('face',) or ('frames',): "
                         "a single-stream face model")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout={cfg.dropout} must be in [0, 1)")


def classify(cfg, feat, num_classes: int, train: bool):
    """Inside a system's compact ``__call__``: features [B, D] -> dropout (``cfg.dropout``) ->
    ``head_out`` -> logits [B, num_classes]."""
    z = nn.Dropout(cfg.dropout)(feat, deterministic=not train)
    return nn.Dense(num_classes, name="head_out")(z)
