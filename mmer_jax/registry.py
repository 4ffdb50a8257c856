"""The model registries: every part a ``model`` config section can name.

- ``SYSTEMS`` (``model.name``): a :class:`System`, the model's config class + its build function;
- ``ENCODERS`` (e.g. ``model.encoders.audio.name``): Flax modules ``(x, mask, *, train) -> [B, D]``;
- ``FUSIONS`` (e.g. ``model.fusion`` of S001/S003/quickstart): vector fusions, Flax modules
  ``(feats, *, train, masks=None) -> [B, D]`` over per-modality features in a given order
  (:mod:`mmer_jax.models.fusion.contract`);
- ``SEQUENCE_FUSIONS`` (``model.fusion`` of S002): sequence layers ``(x [B, U, D], mask [B, U],
  *, train) -> [B, U, D]`` over a dialogue's utterances (``attention_residual``);
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

from mmer_registry import Registry, import_target

# Systems fitted by their own trainer (mmer_jax.fitted) register on import like the others.
SYSTEMS: Registry["System"] = Registry("system",
                                       loaders=("mmer_jax.models.systems", "mmer_jax.fitted"))
ENCODERS: Registry[Any] = Registry("encoder", loaders=("mmer_jax.models.encoders",))
FUSIONS: Registry[Any] = Registry("vector fusion", loaders=("mmer_jax.models.fusion",))
SEQUENCE_FUSIONS: Registry[Any] = Registry("sequence fusion",
                                           loaders=("mmer_jax.models.fusion",))
# The kinds of fusion layer a system can take, each its own registry (``check_fusion``).
FUSION_KINDS: dict[str, Registry[Any]] = {"vector": FUSIONS, "sequence": SEQUENCE_FUSIONS}
HEADS: Registry[Any] = Registry("head", loaders=("mmer_jax.models.heads",))
ARCHITECTURES: Registry["Architecture"] = Registry(
    "pretrained architecture", loaders=("mmer_jax.models.pretrained",))


# The parts of a system trained by gradient: ``"module:attribute"`` strings, imported on use, so
# this layer names the higher layers' classes without importing them.
GRADIENT_TRAINER = "mmer_jax.train.loop:VariantTrainer"
CHECKPOINT_EVALUATOR = "mmer_jax.train.evaluate:evaluate_checkpoints"
NETWORK_PREDICTOR = "mmer_jax.serve.predictor:Predictor"


@dataclasses.dataclass(frozen=True)
class System:
    """A registered system: ``build(config_class instance, num_classes, vocab_size) -> Module``,
    and how ``mmer train``, ``mmer eval``, ``mmer predict`` / ``serve`` and ``mmer reproduce``
    handle it.

    ``config_class`` is the frozen dataclass of the ``model`` section: its defaults are the
    system's defaults, and the section is built with ``schema.from_section`` (unknown keys are
    errors). ``summarize``, when given, maps the selected checkpoint's parameters to a JSON-able
    dict that the run reports as ``model_summary`` (``ssl_probe``: its layer weights).
    ``fusion_kind`` is the kind of fusion layer its ``model.fusion`` names ("vector" or
    "sequence", :data:`FUSION_KINDS`; "" when it has no swappable fusion).

    The parts below are ``"module:attribute"`` strings (:meth:`part` imports one), defaults for
    a system trained by gradient; a non-gradient or two-stage system (``mmer_jax.fitted``)
    names its own:

    - ``trainer``: a class ``(cfg, pipeline, variant, modalities, run_dir)`` whose ``run()``
      fits one variant and returns its result dict (default: the jitted loop);
    - ``evaluator``: ``(workdir, split, cfg) -> {variant: {"epoch", split: metrics}}`` for
      ``mmer eval`` (default: each variant's best checkpoint);
    - ``predictor``: a class ``(workdir, variant=None, batch_size=1)`` with the interface of
      :class:`mmer_jax.serve.prediction.FilePrediction`, for ``mmer predict`` and ``serve``;
    - ``reporter``: None (``mmer reproduce`` summarises the seeds' ``results.json`` as for any
      system), or ``(runs, context) -> report dict`` for a system whose report has tables of
      its own (``s004_hybrid``).
    """

    name: str
    config_class: type
    build: Callable[..., Any]
    trainer: str = GRADIENT_TRAINER
    summarize: Optional[Callable[[Any], dict]] = None
    fusion_kind: str = ""
    evaluator: str = CHECKPOINT_EVALUATOR
    predictor: str = NETWORK_PREDICTOR
    reporter: Optional[str] = None

    @property
    def gradient(self) -> bool:
        """True for a system trained by the jitted gradient loop (checkpoints, epochs)."""
        return self.trainer == GRADIENT_TRAINER

    def part(self, name: str) -> Any:
        """The object of part ``name`` ("trainer", "evaluator", "predictor" or "reporter").

        Raises:
          ValueError: the system has no such part (``reporter`` None).
        """
        target = getattr(self, name)
        if not target:
            raise ValueError(f"system {self.name!r} has no {name}")
        return import_target(target)


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


def check_fusion(system: str, kind: str, name: str, field: str = "fusion") -> None:
    """Raises ValueError naming the system and the fusion when ``name`` is not a fusion of the
    ``kind`` the system takes, so e.g. ``model.fusion=concat`` on S002 (which takes a sequence
    fusion) is refused when its config is built, before a run writes anything.

    Args:
      system: the system's name, for the message ("s002").
      kind: "vector" or "sequence" (:data:`FUSION_KINDS`).
      name: the configured fusion.
      field: the config field, for the message.

    Raises:
      ValueError: ``"fusion='concat': system 's002' takes a sequence fusion (known:
        attention_residual); 'concat' is a vector fusion"``, or an unknown name (every kind's
        names listed).
    """
    registry = FUSION_KINDS[kind]
    if name in registry:
        return
    known = f"known: {', '.join(registry.names())}"
    for other, reg in FUSION_KINDS.items():
        if name in reg:
            raise ValueError(f"{field}={name!r}: system {system!r} takes a {kind} fusion "
                             f"({known}); {name!r} is a {other} fusion")
    every = "; ".join(f"{k}: {', '.join(r.names())}" for k, r in FUSION_KINDS.items())
    raise ValueError(f"{field}={name!r}: unknown fusion {name!r} for system {system!r} ({every})")


def register_system(name: str, config_class: type, trainer: str = GRADIENT_TRAINER,
                    summarize: Optional[Callable[[Any], dict]] = None,
                    fusion_kind: str = "", evaluator: str = CHECKPOINT_EVALUATOR,
                    predictor: str = NETWORK_PREDICTOR,
                    reporter: Optional[str] = None) -> Callable[[Callable], Callable]:
    """Decorator: ``@register_system("s001", S001Config)`` on ``build(cfg, num_classes,
    vocab_size)``; the other arguments as for :class:`System`."""

    def wrap(build: Callable) -> Callable:
        SYSTEMS.register(name, System(name, config_class, build, trainer=trainer,
                                      summarize=summarize, fusion_kind=fusion_kind,
                                      evaluator=evaluator, predictor=predictor,
                                      reporter=reporter))
        return build

    return wrap
