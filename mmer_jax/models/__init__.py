"""Models: encoders, fusions, heads and the systems assembled from them (all registered by name).

:func:`build_model` is the one entry point the trainer uses.
"""

from __future__ import annotations


def build_model(model_cfg, *, num_classes: int, vocab_size: int, modalities):
    """The model a config's ``model`` section describes, for one variant's modalities.

    Args:
      model_cfg: the ``model`` section (ConfigDict or mapping) with ``name`` = a registered system.
      num_classes: classes of the corpus.
      vocab_size: size of the text vocabulary (0 without text).
      modalities: the modalities of this variant (a subset of the section's ``modalities``).

    Returns:
      A Flax module: ``model.apply(variables, batch, train=...) -> (logits, aux)``.

    Raises:
      UsageError: unknown system name, unknown or ill-typed model key.
    """
    import ml_collections

    from mmer_jax import registry
    from mmer_jax.errors import UsageError

    cfg = ml_collections.ConfigDict(
        model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    )
    cfg.num_classes = num_classes
    cfg.vocab_size = vocab_size
    cfg.modalities = list(modalities)
    try:
        builder = registry.MODELS.get_or_raise(cfg.name)
    except KeyError as exc:
        raise UsageError(f"config key 'model.name': {exc.args[0]}") from exc
    return builder(cfg)
