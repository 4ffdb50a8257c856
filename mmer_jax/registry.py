"""The model registries: every part a ``model`` config section can name.

- ``SYSTEMS`` (``model.name``): a :class:`System`, the model's config class + its build function;
- ``ENCODERS`` (e.g. ``model.encoders.audio.name``): Flax modules ``(x, mask, *, train) -> [B, D]``;
- ``FUSIONS`` (e.g. ``model.fusion``): Flax modules combining encoder features;
- ``HEADS`` (e.g. ``model.head``): Flax modules ``(features, *, train) -> logits``;
- ``ARCHITECTURES``: the pretrained encoders' architectures (Whisper, wav2vec 2.0, HuBERT, WavLM,
  BERT/RoBERTa, torchvision ResNets, Inception-ResNet-v2), each an :class:`Architecture` whose
  module returns every layer's hidden states; ``mmer_jax.weights`` imports checkpoints into them.

Corpora (``data_prep.CORPORA``), augmentations (``mmer_jax.data.augment``) and kernel
implementations (``mmer_jax.models.ops``) are registries of the same :class:`mmer_registry.Registry`
type. Each registry imports the modules that fill it on its first lookup, so a caller never has to
import a model file to find a name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from mmer_registry import Registry

SYSTEMS: Registry["System"] = Registry("system", loaders=("mmer_jax.models.systems",))
ENCODERS: Registry[Any] = Registry("encoder", loaders=("mmer_jax.models.encoders",))
FUSIONS: Registry[Any] = Registry("fusion", loaders=("mmer_jax.models.fusion",))
HEADS: Registry[Any] = Registry("head", loaders=("mmer_jax.models.heads",))
ARCHITECTURES: Registry["Architecture"] = Registry(
    "pretrained architecture", loaders=("mmer_jax.models.pretrained",))


@dataclasses.dataclass(frozen=True)
class System:
    """A registered system: ``build(config_class instance, num_classes, vocab_size) -> Module``.

    ``config_class`` is the frozen dataclass of the ``model`` section: its defaults are the
    system's defaults, and the section is built with ``schema.from_section`` (unknown keys are
    errors). ``trainer`` names how a run fits it: "gradient" (the jitted train loop,
    ``train.loop.VariantTrainer``) or a non-gradient fitter that ``train.run`` knows by name
    (``"survey_text"``). ``summarize``, when given, maps the selected checkpoint's parameters to
    a JSON-able dict that the run reports as ``model_summary`` (``ssl_probe``: its layer
    weights).
    """

    name: str
    config_class: type
    build: Callable[..., Any]
    trainer: str = "gradient"
    summarize: Optional[Callable[[Any], dict]] = None


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A pretrained encoder's architecture: its config class, module and input.

    Attributes:
      name: the registered name (``"whisper"``, ``"wav2vec2"``, ``"resnet"``, ...).
      config_class: frozen dataclass of the architecture's shape (sizes, layer-norm order, ...);
        ``config_class(**encoder_json["config"])`` rebuilds it from an imported encoder.
      module: ``module(config) -> nn.Module`` whose ``__call__(x, mask=None, *, train=False)``
        returns :class:`mmer_jax.models.pretrained.EncoderOutput`.
      modality: ``"audio"``, ``"text"`` or ``"image"``.
      dummy_input: ``dummy_input(config, batch) -> (x, mask)``, small zero inputs of the right
        dtype and rank, for ``init`` / ``jax.eval_shape`` (the parameter tree does not depend on
        their length).
    """

    name: str
    config_class: type
    module: Callable[[Any], Any]
    modality: str
    dummy_input: Callable[[Any, int], tuple]


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


def register_system(name: str, config_class: type, trainer: str = "gradient",
                    summarize: Optional[Callable[[Any], dict]] = None
                    ) -> Callable[[Callable], Callable]:
    """Decorator: ``@register_system("s001", S001Config)`` on ``build(cfg, num_classes,
    vocab_size)``; ``trainer`` and ``summarize`` as for :class:`System`."""

    def wrap(build: Callable) -> Callable:
        SYSTEMS.register(name, System(name, config_class, build, trainer, summarize))
        return build

    return wrap
