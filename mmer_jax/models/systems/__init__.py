"""The seed systems and their baselines; importing this package registers them in ``MODELS``.

Registered names: ``s001``, ``s002``, ``s003``, ``text_cnn``, ``bc_lstm``, ``cmn``.
"""

from mmer_jax.models.systems import baselines, s001, s002, s003  # noqa: F401
