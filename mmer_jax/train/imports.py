"""Imported encoders inside trained models: their weights put in at initialisation, their
``encoder.json`` recorded in the run's config, and the per-parameter learning-rate factors of
frozen and fine-tuned imports.

A model section names an import through an :class:`~mmer_jax.models.encoders.imported.
ImportedEncoderConfig` (encoders ``imported`` / ``imported_lstm``); the module holds the import's
architecture as a sub-module ``imported_<sha12>``. Here:

- :func:`fill_records`: each section's ``record`` set from its ``encoder.json`` when a run starts,
  so ``config.json`` holds what the model needs and prediction reads nothing outside the run
  (the grafted weights are in its checkpoints);
- :func:`load_imports` + :func:`graft`: every ``imported_<sha12>`` sub-tree of ``params`` (and
  ``batch_stats``) replaced by the import's variables, inside ``state.init_state`` (so also
  under ``jax.jit``, sharded initialisation, ``jax.eval_shape`` and with EMA), shapes checked;
- :func:`lr_factors`: 0 for a frozen import (``freeze``) and a frozen stem
  (``train.freeze_stem``), ``train.layer_lr_decay ** (N - k)`` for layer k of N of a fine-tuned
  one, 1 elsewhere (``state.make_optimizer`` applies them).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, Optional

import jax
import ml_collections
import numpy as np

from mmer_jax.errors import CheckpointError, UsageError
from mmer_jax.models.encoders.imported import (
    ImportedEncoderConfig,
    is_submodule,
    layer_of,
    read_record,
    submodule_name,
    summary,
)
from mmer_jax.schema import TrainConfig

Path_ = tuple  # a parameter's path: the tree keys from the root


def imported_sections(model_cfg: Any, prefix: str = "model") -> list[tuple[str, Any]]:
    """Every :class:`ImportedEncoderConfig` with a ``path`` or ``record`` in a typed model
    config, with its dotted key (``model.audio``), depth first."""
    out = []
    if isinstance(model_cfg, ImportedEncoderConfig):
        return [(prefix, model_cfg)] if (model_cfg.path or model_cfg.record) else []
    if dataclasses.is_dataclass(model_cfg):
        for f in dataclasses.fields(model_cfg):
            out += imported_sections(getattr(model_cfg, f.name), f"{prefix}.{f.name}")
    return out


def used_sections(model_cfg: Any) -> list[tuple[str, Any]]:
    """:func:`imported_sections` of the encoders the model builds: a section naming a path under
    a system that does not use it (S003's ``audio_import`` with another ``audio_encoder``) is
    left out, by the ``<branch>_encoder`` / ``encoder`` names beside it."""
    keep = []
    for key, sec in imported_sections(model_cfg):
        parent, leaf = _parent(model_cfg, key)
        chooser = _chooser(parent, leaf)
        if chooser is None or getattr(parent, chooser) in ("imported", "imported_lstm"):
            keep.append((key, sec))
    return keep


def _parent(model_cfg, key: str):
    node = model_cfg
    parts = key.split(".")[1:]
    for p in parts[:-1]:
        node = getattr(node, p)
    return node, parts[-1]


def _chooser(parent, leaf: str) -> Optional[str]:
    """The field of ``parent`` that says whether sub-section ``leaf`` is used, if any."""
    names = {f.name for f in dataclasses.fields(parent)}
    base = leaf[: -len("_import")] if leaf.endswith("_import") else leaf
    for cand in (f"{base}_encoder", "encoder" if leaf == "audio" else ""):
        if cand in names:
            return cand
    return None


def _record(key: str, sec: ImportedEncoderConfig) -> dict:
    """:func:`read_record` with a :class:`UsageError` naming the config key."""
    try:
        return read_record(sec)
    except ValueError as exc:
        raise UsageError(f"config key '{key}.path': {exc}") from None


def fill_records(cfg: ml_collections.ConfigDict) -> None:
    """Sets ``record`` of every used imported-encoder section of ``cfg.model`` that has a
    ``path`` and no record yet, from the import's ``encoder.json``.

    Raises:
      UsageError: a section's ``path`` is not an imported encoder (the message names the key).
    """
    from mmer_jax.models import model_config

    for key, sec in used_sections(model_config(cfg.model)):
        if sec.record:
            continue
        record = _record(key, sec)
        node = cfg
        for part in key.split("."):
            node = node[part]
        node.record = json.dumps(record, sort_keys=True, separators=(",", ":"))


def load_imports(model_cfg: Any) -> dict[str, dict]:
    """The variables of every import a model holds: ``{"imported_<sha12>": {"params": ...,
    ["batch_stats": ...]}}`` (float32 numpy).

    Raises:
      UsageError: a section names no readable import.
      CheckpointError: an import cannot be read, or its directory holds another import than
        the section's ``record`` names (the message names the key and the directory).
    """
    from mmer_jax.weights import store

    out = {}
    for key, sec in used_sections(model_cfg):
        name = submodule_name(_record(key, sec))
        if name in out:
            continue
        if not sec.path:
            raise CheckpointError(f"config key '{key}.path' is empty: the import's weights are "
                                  "needed to initialise the model")
        try:
            enc = store.load(sec.path)
        except CheckpointError as exc:
            raise CheckpointError(f"config key '{key}.path': {exc}") from None
        if submodule_name(summary(enc.record)) != name:
            raise CheckpointError(f"config key '{key}.path': {sec.path} holds import "
                                  f"{submodule_name(summary(enc.record))}, the run was started "
                                  f"with {name} (its record); point path at that import")
        out[name] = enc.variables
    return out


def graft(variables: dict, imports: Optional[dict]) -> dict:
    """``variables`` (``{"params", ["batch_stats"]}`` of a freshly initialised model) with every
    ``imported_<sha12>`` sub-tree replaced by that import's (traceable: call it inside
    ``jax.jit``; the import's arrays may be tracers).

    Raises:
      CheckpointError: an import's tree or shapes differ from the model's (one line naming the
        import and the variable), or the model holds a sub-module no import was given for.
    """
    if not imports:
        return variables
    out = dict(variables)
    for collection in ("params", "batch_stats"):
        if collection in out:
            out[collection] = _graft_tree(out[collection], imports, collection, ())
    return out


def _graft_tree(tree, imports, collection: str, path: tuple):
    if not isinstance(tree, dict):
        return tree
    out = {}
    for key, sub in tree.items():
        if is_submodule(key):
            if key not in imports:
                raise CheckpointError(f"{'/'.join(path + (key,))}: no import was loaded for "
                                      "this sub-module")
            src = imports[key].get(collection)
            if src is None:
                raise CheckpointError(f"import {key}: no {collection!r} collection, which the "
                                      f"model has under {'/'.join(path + (key,))}")
            out[key] = _checked(sub, src, key, collection, ())
        else:
            out[key] = _graft_tree(sub, imports, collection, path + (key,))
    return out


def _checked(model, src, name: str, collection: str, path: tuple):
    where = f"import {name}: {collection}/{'/'.join(path) or '.'}"
    if isinstance(model, dict):
        if not isinstance(src, dict) or set(model) != set(src):
            missing = sorted(set(model) - set(src)) if isinstance(src, dict) else ["(a tree)"]
            extra = sorted(set(src) - set(model)) if isinstance(src, dict) else []
            raise CheckpointError(f"{where}: the model has {missing[:3]} the import lacks, the "
                                  f"import {extra[:3]} the model lacks")
        return {k: _checked(model[k], src[k], name, collection, path + (k,)) for k in model}
    if tuple(np.shape(src)) != tuple(model.shape):
        raise CheckpointError(f"{where}: the import has shape {tuple(np.shape(src))}, the model "
                              f"{tuple(model.shape)}")
    return jax.numpy.asarray(src, model.dtype)


def lr_factors(model_cfg: Any, train: TrainConfig) -> Optional[Callable[[Path_], float]]:
    """The learning-rate factor of each parameter, by its path, or None when every factor is 1
    (no import in the model, or only fine-tuned ones at ``layer_lr_decay = 1`` with
    ``freeze_stem`` False).

    Under an ``imported_<sha12>`` sub-module: 0 when its section has ``freeze``, 0 for the stem
    with ``train.freeze_stem``, else ``train.layer_lr_decay ** (N - k)`` for the group of
    layer k of N (:func:`mmer_jax.models.encoders.imported.layer_of`). Everything else: 1.

    Raises:
      UsageError: a section names no readable import, or one import is named by two sections
        with different ``freeze``.
    """
    sections = {}
    for key, sec in used_sections(model_cfg):
        record = _record(key, sec)
        name = submodule_name(record)
        if name in sections and sections[name][1].freeze != sec.freeze:
            raise UsageError(f"config key '{key}.freeze': the same import is also used by "
                             f"'{sections[name][0]}' with freeze={sections[name][1].freeze}")
        sections[name] = (key, sec, record)
    if not sections:
        return None
    decay, freeze_stem = train.layer_lr_decay, train.freeze_stem
    if decay == 1.0 and not freeze_stem and not any(s.freeze for _, s, _ in sections.values()):
        return None

    def factor(path: Path_) -> float:
        for i, key in enumerate(path):
            if key in sections:
                _, sec, record = sections[key]
                if sec.freeze:
                    return 0.0
                if i + 1 >= len(path):
                    return 1.0
                k, n, stem = layer_of(record, path[i + 1])
                return 0.0 if (stem and freeze_stem) else float(decay ** (n - k))
        return 1.0

    return factor


def key_path(path) -> Path_:
    """A ``jax.tree_util`` key path as a tuple of str keys."""
    return tuple(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path)
