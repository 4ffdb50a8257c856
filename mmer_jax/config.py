"""Configs are Python files with ``get_config() -> ConfigDict``; the command line overrides keys.

``--config.train.lr=1e-3`` sets ``cfg.train.lr``. Values are parsed as Python literals when they
look like one (numbers, booleans, lists, None) and kept as strings otherwise; the ConfigDict's
own type check then rejects, say, a string for a float. Every failure is a ``UsageError`` naming
the key or file.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from typing import Any, Iterable

import ml_collections

from mmer_jax import schema
from mmer_jax.errors import UsageError


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """Executes the config file and returns its ``get_config()``.

    Raises:
      UsageError: the file is missing, fails to import, or has no ``get_config()`` returning a
        ConfigDict.
    """
    if not os.path.isfile(path):
        raise UsageError(f"config file {path!r} does not exist")
    spec = importlib.util.spec_from_file_location("_mmer_config", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken config must name itself, not dump a traceback
        raise UsageError(
            f"config file {path!r} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not hasattr(module, "get_config"):
        raise UsageError(f"config file {path!r} defines no get_config()")
    cfg = module.get_config()
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise UsageError(f"config file {path!r}: get_config() must return a ConfigDict")
    return cfg


def parse_value(text: str) -> Any:
    """'1e-3' -> 0.001, 'true' -> True, '[1,2]' -> [1, 2], 'adam' -> 'adam'."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def set_key(cfg: ml_collections.ConfigDict, dotted: str, raw: str) -> None:
    """Sets ``cfg.<dotted>`` from a command-line string, type-checked against the existing value."""
    parts = dotted.split(".")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise UsageError(
                f"unknown config key {'.'.join(parts[: i + 1])!r} (in --config.{dotted})"
            )
        node = node[part]
    leaf = parts[-1]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        raise UsageError(
            f"unknown config key {dotted!r}; known keys here: "
            f"{', '.join(sorted(node.keys())) if hasattr(node, 'keys') else '-'}"
        )
    old = node[leaf]
    value = parse_value(raw)
    # ConfigDict allows int -> float; make tuples/lists interchangeable and bools strict.
    if isinstance(old, bool) and not isinstance(value, bool):
        raise UsageError(f"config key {dotted!r} expects true/false, got {raw!r}")
    if isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float):
        raise UsageError(f"config key {dotted!r} expects int, got {raw!r}")
    if isinstance(old, (list, tuple)) and isinstance(value, (list, tuple)):
        value = type(old)(value)
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(old, str) and not isinstance(value, str):
        value = raw
    if old is not None and isinstance(value, str) and not isinstance(old, str):
        raise UsageError(f"config key {dotted!r} expects {type(old).__name__}, got {raw!r}")
    try:
        node[leaf] = value
    except (TypeError, ValueError) as exc:
        raise UsageError(f"config key {dotted!r}: cannot set {raw!r} ({exc})") from exc


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
    """Applies ``["train.lr=1e-3", ...]`` (the text after ``--config.``)."""
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"override --config.{item} needs the form --config.KEY=VALUE")
        key, raw = item.split("=", 1)
        set_key(cfg, key, raw)


RUN_KEYS = ("system", "seed", "primary_variant", "variants", "variant_overrides", "class_views")


def base_config(model: str, system: str | None = None) -> ml_collections.ConfigDict:
    """Every key of a run config at its default, with ``model`` = system ``model``'s section.

    The defaults come from the schema's dataclasses (``mmer_jax.schema``) and the system's
    config class, so an experiment file sets only what differs.

    Args:
      model: a registered system name (``model.name``).
      system: the run's name in reports (``cfg.system``); defaults to ``model``.

    Raises:
      UsageError: no system is called ``model``.
    """
    from mmer_jax.models import default_model_section

    cfg = ml_collections.ConfigDict()
    cfg.system = system or model
    cfg.seed = 0
    cfg.primary_variant = "fused"  # the variant results.json reports first
    cfg.variants = ml_collections.ConfigDict()  # {name: [modalities]}; empty -> model.modalities
    # {variant: nested config changes}, e.g. {"fused_dropout05": {"model": {"dropout": 0.5}}}
    cfg.variant_overrides = ml_collections.ConfigDict()
    # {view name: [class names]}: extra confusion views in reproduction reports (S001's 6 of 8).
    cfg.class_views = ml_collections.ConfigDict()
    cfg.data = schema.to_config_dict(schema.DataConfig())
    cfg.model = default_model_section(model)
    cfg.train = schema.to_config_dict(schema.TrainConfig())
    cfg.protocol = schema.to_config_dict(schema.ProtocolConfig())
    return cfg


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Builds every typed section of ``cfg`` (and each variant's model), so that a bad key or
    value is reported before anything is read or written.

    Raises:
      UsageError: an unknown key, a missing section, a value of the wrong type or out of range,
        a variant override naming no variant; the message names the key.
    """
    from mmer_jax.models import model_config

    unknown = sorted(set(cfg.keys()) - set(RUN_KEYS) - set(schema.SECTIONS) - {"model"})
    if unknown:
        raise UsageError(f"unknown config key {unknown[0]!r}; known top-level keys: "
                         f"{', '.join(sorted((*RUN_KEYS, *schema.SECTIONS, 'model')))}")
    for name in (*schema.SECTIONS, "model"):
        if name not in cfg:
            raise UsageError(f"config is missing the section {name!r}")
    schema.sections(cfg)
    variants = {k: list(v) for k, v in (cfg.get("variants") or {}).items()}
    for name in sorted(set(cfg.get("variant_overrides") or {}) - set(variants)):
        raise UsageError(f"config key 'variant_overrides.{name}': no such variant "
                         f"(variants: {', '.join(variants) or 'none'})")
    model_config(cfg.model)
    for mods in variants.values():
        model_config(cfg.model, mods)


def load(path: str, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """Loads a config file, applies ``--config.KEY=VALUE`` overrides and validates the result.

    Raises:
      UsageError: the file is missing or broken, an override names an unknown key or a value of
        the wrong type, or the result fails :func:`validate`.
    """
    cfg = load_config_file(path)
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg
