"""One config schema: every default in one place, unknown keys rejected by name, every shipped
experiment config loads and builds each variant's model."""

import ast
import dataclasses
import glob
import os
import pathlib

import ml_collections
import pytest

from mmer_jax import config as config_lib
from mmer_jax import schema
from mmer_jax.errors import UsageError
from mmer_jax.models import build_model, model_config
from mmer_jax.registry import SYSTEMS

REPO = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(
    p for p in glob.glob(str(REPO / "experiments" / "*.py"))
    if "def get_config" in pathlib.Path(p).read_text()
)


def test_base_config_sections_are_the_dataclass_defaults():
    cfg = config_lib.base_config("s002")
    assert schema.sections(cfg) == (schema.DataConfig(), schema.TrainConfig(),
                                    schema.ProtocolConfig())
    assert model_config(cfg.model) == SYSTEMS["s002"].config_class()
    # The trainer's optimiser settings come from the same place as the experiments' defaults.
    assert (cfg.train.schedule, cfg.train.grad_clip, cfg.train.weight_decay) == (
        schema.TrainConfig.schedule, schema.TrainConfig.grad_clip, schema.TrainConfig.weight_decay)


@pytest.mark.parametrize("override, message", [
    ("train.foo=1", "unknown config key 'train.foo'"),
    ("model.audio.foo=1", "unknown config key 'model.audio.foo'"),
    ("model.text.vocab_size=3", "unknown config key 'model.text.vocab_size'"),
    ("train.epochs=2.5", "config key 'train.epochs' expects int"),
    ("train.dtype=fp16", "config key 'train.dtype' must be one of 'float32', 'bfloat16'"),
    ("train.select_metric=uar2", "config key 'train.select_metric' must be one of"),
    ("train.lr=0", r"config key 'train.lr': lr=0\.0 must be > 0"),
    ("model.implementation=cuda",
     "config key 'model.implementation'.*known: auto, cudnn, interpret"),
    ("model.name=nope", "config key 'model.name': unknown system 'nope'"),
    ("model.fusion=nosuch", "config key 'model.fusion': fusion='nosuch': unknown fusion 'nosuch'"),
    ("model.num_heads=0", "config key 'model.num_heads': num_heads=0 must be >= 1 and divide"),
    ("model.num_heads=3", "num_heads=3 must be >= 1 and divide the context width"),
    ("data.unit=turn", "config key 'data.unit' must be one of 'utterance', 'dialogue'"),
])
def test_bad_keys_and_values_are_named_before_anything_runs(override, message, tmp_path):
    path = REPO / "experiments" / "s002_iemocap_text.py"
    cfg = config_lib.load_config_file(str(path))
    if override.startswith(("train.foo", "model.audio.foo", "model.text.vocab_size")):
        key, value = override.split("=")
        node = cfg
        for part in key.split(".")[:-1]:
            node = node[part]
        with node.unlocked() if hasattr(node, "unlocked") else _nullcontext():
            node[key.split(".")[-1]] = int(value)
        with pytest.raises(UsageError, match=message):
            config_lib.validate(cfg)
        return
    with pytest.raises(UsageError, match=message):
        config_lib.apply_overrides(cfg, [override])
        config_lib.validate(cfg)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_unknown_top_level_key_is_named():
    cfg = config_lib.base_config("quickstart")
    cfg.epochs = 3  # meant train.epochs
    with pytest.raises(UsageError, match="unknown config key 'epochs'"):
        config_lib.validate(cfg)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=os.path.basename)
def test_experiment_config_loads_and_builds_every_variant(path):
    cfg = config_lib.load(path, [])
    variants = {k: list(v) for k, v in cfg.variants.items()} or {"main": cfg.model.modalities}
    for modalities in variants.values():
        model = build_model(cfg.model, num_classes=6, vocab_size=10, modalities=modalities)
        assert model_config(cfg.model, modalities).modalities == tuple(modalities)
        assert model is not None


def _schema_keys() -> set[str]:
    return {f.name for cls in schema.SECTIONS.values() for f in dataclasses.fields(cls)}


def test_no_code_reads_a_schema_key_with_a_default_of_its_own():
    """``cfg.train.get("lr", 1e-3)`` would be a second default for a key the schema owns (reading
    a results record such as ``protocol.get("unit", ...)`` is not a config read)."""
    keys, offenders = _schema_keys(), []
    for path in sorted((REPO / "mmer_jax").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "get" and len(node.args) in (1, 2)
                    and isinstance(node.args[0], ast.Constant) and node.args[0].value in keys
                    and "cfg" in ast.unparse(node.func.value).lower()):  # a config, not a record
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                offenders.append(f"{where} .get({node.args[0].value!r}, ...)")
    assert not offenders, "\n".join(offenders)


def test_to_config_dict_round_trips():
    for cls in (*schema.SECTIONS.values(), *(s.config_class for s in SYSTEMS.values())):
        obj = cls()
        assert schema.from_section(cls, schema.to_config_dict(obj), "x") == obj
    assert isinstance(schema.to_config_dict(schema.DataConfig()), ml_collections.ConfigDict)


def test_a_relative_experiment_path_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `mmer list` prints experiments/<name>.py
    assert config_lib.load_config_file("experiments/quickstart.py").system == "quickstart"
    with pytest.raises(UsageError, match="config file 'experiments/nope.py' does not exist"):
        config_lib.load_config_file("experiments/nope.py")
