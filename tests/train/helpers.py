"""Shared bits of the training tests: a tiny quickstart config."""

from mmer_jax import config as config_lib

QUICKSTART = "experiments/quickstart.py"


def tiny_config(data_dir: str, **overrides):
    """The quickstart config shrunk to the tiny corpus and small, fast settings."""
    items = {
        "data.config": "tiny",
        "data.data_dir": data_dir,
        "data.read_threads": 0,
        "train.epochs": 2,
        "train.batch_size": 16,
        "train.progress": False,
        "train.log_every": 1,
    }
    items.update(overrides)
    cfg = config_lib.load(QUICKSTART, [f"{k}={v}" for k, v in items.items()])
    return cfg


def only_variant(cfg, name: str, modalities):
    import ml_collections

    cfg.variants = ml_collections.ConfigDict({name: list(modalities)})
    cfg.primary_variant = name
    return cfg
