"""The model registries: every part a ``model`` config section can name.

- ``SYSTEMS`` (``model.name``): a :class:`System`, the model's config class + its build function;
- ``ENCODERS`` (e.g. ``model.encoders.audio.name``): Flax modules ``(x, mask, *, train) -> [B, D]``;
- ``FUSIONS`` (e.g. ``model.fusion``): Flax modules combining encoder features;
- ``HEADS`` (e.g. ``model.head``): Flax modules ``(features, *, train) -> logits``.

Corpora (``data_prep.CORPORA``), augmentations (``mmer_jax.data.augment``) and kernel
implementations (``mmer_jax.models.ops``) are registries of the same :class:`mmer_registry.Registry`
type. Each registry imports the modules that fill it on its first lookup, so a caller never has to
import a model file to find a name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from mmer_registry import Registry

SYSTEMS: Registry["System"] = Registry("system", loaders=("mmer_jax.models.systems",))
ENCODERS: Registry[Any] = Registry("encoder", loaders=("mmer_jax.models.encoders",))
FUSIONS: Registry[Any] = Registry("fusion", loaders=("mmer_jax.models.fusion",))
HEADS: Registry[Any] = Registry("head", loaders=("mmer_jax.models.heads",))


@dataclasses.dataclass(frozen=True)
class System:
    """A registered system: ``build(config_class instance, num_classes, vocab_size) -> Module``.

    ``config_class`` is the frozen dataclass of the ``model`` section: its defaults are the
    system's defaults, and the section is built with ``schema.from_section`` (unknown keys are
    errors). ``trainer`` names how a run fits it: "gradient" (the jitted train loop,
    ``train.loop.VariantTrainer``) or a non-gradient fitter that ``train.run`` knows by name
    (``"survey_text"``).
    """

    name: str
    config_class: type
    build: Callable[..., Any]
    trainer: str = "gradient"


def check_names(**names: tuple[Registry, str]) -> None:
    """Raises ValueError naming the field when a name is in no entry of its registry, so a
    model config with ``fusion="nosuch"`` fails when it is built, before a run writes anything.

    Example: ``check_names(fusion=(FUSIONS, self.fusion))``.

    Raises:
      ValueError: ``"<field>=<name>: unknown fusion 'nosuch'; known: ..."``.
    """
    for field, (registry, name) in names.items():
        if name not in registry:
            try:
                registry.get(name)
            except KeyError as exc:
                raise ValueError(f"{field}={name!r}: {exc}") from None


def register_system(name: str, config_class: type,
                    trainer: str = "gradient") -> Callable[[Callable], Callable]:
    """Decorator: ``@register_system("s001", S001Config)`` on ``build(cfg, num_classes,
    vocab_size)``; ``trainer`` as for :class:`System`."""

    def wrap(build: Callable) -> Callable:
        SYSTEMS.register(name, System(name, config_class, build, trainer))
        return build

    return wrap
