"""Models: encoders, fusions, heads and the systems assembled from them, all registered by name
(:mod:`mmer_jax.registry`). :func:`build_model` is the one entry point the trainer uses.
"""

from __future__ import annotations

from typing import Any


def model_config(model_section: Any, modalities=None) -> Any:
    """The typed ``model`` section: an instance of the named system's config dataclass.

    Args:
      model_section: a ConfigDict / mapping with ``name`` = a registered system and that system's
        keys (missing keys take the dataclass defaults).
      modalities: when given, replaces the section's ``modalities`` (one variant's subset).

    Raises:
      UsageError: unknown system name, unknown key, ill-typed or out-of-range value; the message
        names the full key (``model.audio.depth``).
    """
    from mmer_jax.errors import UsageError
    from mmer_jax.registry import SYSTEMS
    from mmer_jax.schema import from_section, plain
    from mmer_registry import lookup

    values = dict(plain(model_section))
    system = lookup(SYSTEMS, values.get("name", ""), "model.name", UsageError)
    if modalities is not None:
        values["modalities"] = tuple(modalities)
    return from_section(system.config_class, values, "model")


def build_model(model_section: Any, *, num_classes: int, vocab_size: int, modalities=None):
    """The model a config's ``model`` section describes, for one variant's modalities.

    Args:
      model_section: the ``model`` section (see :func:`model_config`), or a typed config.
      num_classes: classes of the corpus.
      vocab_size: size of the text vocabulary (0 without text).
      modalities: the modalities of this variant (default: the section's own).

    Returns:
      A Flax module: ``model.apply(variables, batch, train=...) -> (logits, aux)``.

    Raises:
      UsageError: as :func:`model_config`, or a setting the system rejects while building.
    """
    from mmer_jax.errors import UsageError
    from mmer_jax.registry import SYSTEMS

    cfg = model_config(model_section, modalities)
    try:
        return SYSTEMS[cfg.name].build(cfg, num_classes=num_classes, vocab_size=vocab_size)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"config section 'model' ({cfg.name}): {exc}") from exc


def default_model_section(name: str):
    """A ConfigDict holding every key of system ``name``'s ``model`` section at its default.

    Raises:
      UsageError: no system is called ``name``.
    """
    from mmer_jax.errors import UsageError
    from mmer_jax.registry import SYSTEMS
    from mmer_jax.schema import to_config_dict
    from mmer_registry import lookup

    return to_config_dict(lookup(SYSTEMS, name, "model.name", UsageError).config_class())
