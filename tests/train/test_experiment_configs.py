"""Every shipped experiment config loads, names a registered model, and its variant overrides and
class views refer to variants and classes that exist (typos surface here, not hours into a run)."""

import glob
import os

import pytest

from mmer_jax import config as config_lib
from mmer_jax.registry import SYSTEMS
from mmer_jax.reproduce.class_views import check_views
from mmer_jax.schema import DataConfig, from_section
from mmer_jax.train.run import config_for_variant, variants_of

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def _is_config(path: str) -> bool:
    """An experiment config defines get_config(); helpers (recipes, corpora) do not."""
    with open(path) as f:
        return "\ndef get_config(" in f.read()


CONFIGS = sorted(p for p in glob.glob(os.path.join(REPO, "experiments", "*.py")) if _is_config(p))


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_is_consistent(path, tmp_path):
    from data_prep import build

    cfg = config_lib.load(path, [])
    assert cfg.model.name in SYSTEMS
    variants = variants_of(cfg)
    for name in variants:
        config_for_variant(cfg, name)  # raises on an override of a key the config lacks
    assert set(cfg.get("variant_overrides") or {}) <= set(variants)
    data = from_section(DataConfig, cfg.data, "data")
    config = data.config or None
    if config and config.endswith(".json") and not os.path.exists(config):
        config = None  # a user's corpus spec (speech_recipe_folder.py): the builder's default
    builder = build.get_builder(data.corpus, config, str(tmp_path))
    classes = list(builder.info.features["label"].names)
    check_views({k: list(v) for k, v in (cfg.get("class_views") or {}).items()}, classes)
