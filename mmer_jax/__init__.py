"""mmer_jax: multimodal emotion recognition (speech, face video, text) in JAX/Flax.

What a script needs, importable from the top (resolved on first use, so ``import mmer_jax`` stays
cheap)::

    import mmer_jax as mj

    cfg = mj.load_config("experiments/quickstart.py", ["train.epochs=2"])
    results = mj.run(cfg, "runs/quickstart")            # trains every variant; results.json
    mj.evaluate("runs/quickstart", split="test")        # best-by-validation checkpoints
    mj.SYSTEMS.names()                                  # every registered system
    model = mj.build_model(cfg.model, num_classes=6, vocab_size=100)

| name | what |
|---|---|
| ``load_config``, ``base_config`` | config files and their defaults (``mmer_jax.config``) |
| ``DataConfig``, ``TrainConfig``, ``ProtocolConfig`` | the typed config sections (``schema``) |
| ``run``, ``evaluate`` | a whole run (train, select, test once); re-evaluation of a finished one |
| ``VariantTrainer`` | one variant's trainer, with its public steps (``train.loop``) |
| ``make_pipeline`` | a corpus as host batches (``data``) |
| ``build_model`` | a registered system from a ``model`` section (``models``) |
| ``SYSTEMS``, ``ENCODERS``, ``FUSIONS``, ``SEQUENCE_FUSIONS``, ``HEADS`` | model registries |
| ``CORPORA``, ``AUGMENTATIONS``, ``OFFLINE_AUGMENTATIONS`` | data registries |
| ``attention``, ``dynamic_conv`` | the kernels' ops (``mmer_kernels``) |
| ``UsageError``, ``RunError`` | the errors the ``mmer`` command reports in one line |
"""

import importlib as _importlib

__version__ = "0.1.0"

# public name -> "module:attribute"
_EXPORTS = {
    "load_config": "mmer_jax.config:load",
    "base_config": "mmer_jax.config:base_config",
    "DataConfig": "mmer_jax.schema:DataConfig",
    "TrainConfig": "mmer_jax.schema:TrainConfig",
    "ProtocolConfig": "mmer_jax.schema:ProtocolConfig",
    "run": "mmer_jax.train.run:run",
    "evaluate": "mmer_jax.train.evaluate:evaluate_run",
    "VariantTrainer": "mmer_jax.train.loop:VariantTrainer",
    "make_pipeline": "mmer_jax.data.pipeline:make_pipeline",
    "build_model": "mmer_jax.models:build_model",
    "SYSTEMS": "mmer_jax.registry:SYSTEMS",
    "ENCODERS": "mmer_jax.registry:ENCODERS",
    "FUSIONS": "mmer_jax.registry:FUSIONS",
    "SEQUENCE_FUSIONS": "mmer_jax.registry:SEQUENCE_FUSIONS",
    "HEADS": "mmer_jax.registry:HEADS",
    "CORPORA": "data_prep:CORPORA",
    "AUGMENTATIONS": "mmer_jax.data.augment:AUGMENTATIONS",
    "OFFLINE_AUGMENTATIONS": "mmer_jax.data.augment:OFFLINE_AUGMENTATIONS",
    "attention": "mmer_kernels:attention",
    "dynamic_conv": "mmer_kernels:dynamic_conv",
    "UsageError": "mmer_jax.errors:UsageError",
    "RunError": "mmer_jax.errors:RunError",
}
__all__ = sorted(_EXPORTS)
# ``train`` is not exported: it would be shadowed by the subpackage ``mmer_jax.train`` as soon as
# that is imported (Python binds submodules as package attributes).


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmer_jax' has no attribute {name!r}")
    module, attr = _EXPORTS[name].split(":")
    value = getattr(_importlib.import_module(module), attr)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return ["__version__", *__all__]
