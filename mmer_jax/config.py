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

from mmer_jax.errors import UsageError


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """Executes the config file and returns its ``get_config()``."""
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


REQUIRED = (
    "system",
    "data.corpus",
    "model.name",
    "train.epochs",
    "train.batch_size",
    "train.lr",
    "seed",
)


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Checks required keys and value ranges; raises UsageError naming the key."""
    for dotted in REQUIRED:
        node = cfg
        for part in dotted.split("."):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                raise UsageError(f"config is missing required key {dotted!r}")
            node = node[part]
    if cfg.train.epochs < 1:
        raise UsageError(f"config key 'train.epochs' must be >= 1, got {cfg.train.epochs}")
    if cfg.train.batch_size < 1:
        raise UsageError(f"config key 'train.batch_size' must be >= 1, got {cfg.train.batch_size}")
    if not cfg.train.lr > 0:
        raise UsageError(f"config key 'train.lr' must be > 0, got {cfg.train.lr}")


def load(path: str, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    cfg = load_config_file(path)
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg
