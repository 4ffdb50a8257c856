"""Configs are Python files with ``get_config() -> ConfigDict``; the command line overrides keys.

``--config.train.lr=1e-3`` sets ``cfg.train.lr``. Values are parsed as Python literals when they
look like one (numbers, booleans, lists, None) and kept as strings otherwise; the ConfigDict's
own type check then rejects, say, a string for a float. Every failure is a ``UsageError`` naming
the key or file.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
from typing import Any, Iterable

import ml_collections

from mmer_jax import schema
from mmer_jax.errors import UsageError


def did_you_mean(name: str, known: Iterable[str], prefix: str = "") -> str:
    """``"; did you mean 'uar'?"`` for a near-miss of ``name`` among ``known`` (case-insensitive),
    else ``""``; ``prefix`` is put before each suggestion (``"train."``)."""
    known = list(known)
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(prefix + by_lower[c]) for c in close) + "?"


def _resolve_config_path(path: str) -> str:
    """``path`` as given, else (relative, e.g. ``experiments/quickstart.py`` as ``mmer list``
    prints it) inside the checkout that holds the installed ``experiments`` package."""
    if os.path.isfile(path):
        return path
    if not os.path.isabs(path):
        spec = importlib.util.find_spec("experiments")
        if spec is not None and spec.origin:
            root = os.path.dirname(os.path.dirname(spec.origin))
            candidate = os.path.join(root, path)
            if os.path.isfile(candidate):
                return candidate
    raise UsageError(f"config file {path!r} does not exist")


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """Executes the config file and returns its ``get_config()``.

    Raises:
      UsageError: the file is missing, fails to import, has no ``get_config()``, or its
        ``get_config()`` raises or returns no ConfigDict (each names the file).
    """
    path = _resolve_config_path(path)
    spec = importlib.util.spec_from_file_location("_mmer_config", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken config must name itself, not dump a traceback
        raise UsageError(
            f"config file {path!r} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not hasattr(module, "get_config"):
        # e.g. a script's settings file: settings of a runner, not of a trained system
        how = next((line.strip() for line in (module.__doc__ or "").splitlines()
                    if line.strip().startswith("python -m ")), None)
        raise UsageError(f"config file {path!r} defines no get_config(): it configures no "
                         "trained system" + (f"; run it as its docstring says: `{how}`"
                                             if how else ""))
    try:
        cfg = module.get_config()
    except Exception as exc:  # as at import: the file at fault is named, not only the error
        raise UsageError(
            f"config file {path!r}: get_config() raised {type(exc).__name__}: {exc}"
        ) from exc
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
            where = ".".join(parts[:i])
            hint = (did_you_mean(part, node.keys(), where + "." if where else "")
                    if hasattr(node, "keys") else "")
            raise UsageError(
                f"unknown config key {'.'.join(parts[: i + 1])!r} (in --config.{dotted}){hint}"
            )
        node = node[part]
    leaf = parts[-1]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        known = sorted(node.keys()) if hasattr(node, "keys") else []
        where = ".".join(parts[:-1])
        hint = did_you_mean(leaf, known, where + "." if where else "")
        raise UsageError(
            f"unknown config key {dotted!r}"
            + (hint or f"; known keys here: {', '.join(known) or '-'}")
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
    value is reported before anything is read or written. A corpus alias in ``data.corpus``
    (:data:`CORPUS_ALIASES`) is replaced by the registered name (and builder config).

    Raises:
      UsageError: an unknown key, a missing section, a value of the wrong type or out of range,
        a variant override naming no variant; the message names the key.
    """
    from mmer_jax.models import model_config

    top = sorted((*RUN_KEYS, *schema.SECTIONS, "model"))
    unknown = sorted(set(cfg.keys()) - set(top))
    if unknown:
        raise UsageError(f"unknown config key {unknown[0]!r}"
                         + (did_you_mean(unknown[0], top)
                            or f"; known top-level keys: {', '.join(top)}"))
    for name in (*schema.SECTIONS, "model"):
        if name not in cfg:
            raise UsageError(f"config is missing the section {name!r}")
    _check_run_keys(cfg)
    data_keys = cfg.data.keys()
    if "corpus" in data_keys and isinstance(cfg.data.corpus, str):  # "generated", "iemocap_text"
        corpus, config = corpus_alias(cfg.data.corpus,
                                      cfg.data.config if "config" in data_keys else None)
        cfg.data.corpus = corpus
        if config is not None and "config" in cfg.data:
            cfg.data.config = config
    data, _, _ = schema.sections(cfg)
    _check_corpus(data.corpus)
    _check_system(cfg.model.get("name"))
    variants = {k: list(v) for k, v in (cfg.get("variants") or {}).items()}
    for name in sorted(set(cfg.get("variant_overrides") or {}) - set(variants)):
        raise UsageError(f"config key 'variant_overrides.{name}': no such variant "
                         f"(variants: {', '.join(variants) or 'none'})")
    model_config(cfg.model)
    for mods in variants.values():
        model_config(cfg.model, mods)


def _check_run_keys(cfg: ml_collections.ConfigDict) -> None:
    """Types of the top-level run keys (the typed sections check their own)."""
    seed = cfg.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UsageError(f"config key 'seed' expects int, got {seed!r}")
    for key in ("system", "primary_variant"):
        value = cfg.get(key, "")
        if not isinstance(value, str) or (key == "system" and not value):
            raise UsageError(f"config key {key!r} expects a non-empty str, got {value!r}")
    for name, mods in (cfg.get("variants") or {}).items():
        if isinstance(mods, str) or not isinstance(mods, (list, tuple)) or not mods or not all(
            isinstance(m, str) for m in mods
        ):
            raise UsageError(
                f"config key 'variants.{name}' expects a non-empty list of modality names, "
                f"got {mods!r}"
            )


# One corpus, two spellings: experiment configs are named after a short key
# (experiments/<system>_<key>.py, `mmer reproduce --corpus KEY`), the builders after the
# registered corpus and a builder config (data.corpus / data.config, `mmer data build NAME
# --config C`). Every command takes either spelling.
CORPUS_ALIASES: dict[str, tuple[str, str | None]] = {
    "generated": ("generated_emotion", None),
    "iemocap_text": ("iemocap", "text"),
}


def corpus_alias(name: str, config: str | None = None) -> tuple[str, str | None]:
    """A corpus name in any accepted spelling -> ``(registered corpus, builder config)``.

    ``"generated"`` -> ``("generated_emotion", config)``, ``"iemocap_text"`` -> ``("iemocap",
    "text")``, ``"Generated-Emotion"`` -> ``("generated_emotion", config)``; a registered name
    passes through with ``config``. The builder config an alias implies wins over ``config`` when
    ``config`` is unset ("", None or "default").

    Raises:
      UsageError: ``config`` names another builder config than the alias implies.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in CORPUS_ALIASES:
        return (key if _is_registered(key) else name), config
    corpus, implied = CORPUS_ALIASES[key]
    if implied is None:
        return corpus, config
    if config not in (None, "", "default", implied):
        raise UsageError(f"corpus {name!r} is {corpus!r} with builder config {implied!r}, but "
                         f"the builder config {config!r} was given")
    return corpus, implied


def experiment_corpus_key(name: str) -> str:
    """A corpus name in any accepted spelling -> the key of ``experiments/<system>_<key>.py``:
    ``"generated_emotion"`` -> ``"generated"``, ``"iemocap/text"`` -> ``"iemocap_text"``; other
    names pass through (lower-cased)."""
    key = str(name).strip().lower().replace("-", "_")
    corpus, _, config = key.partition("/")
    for short, (registered, implied) in CORPUS_ALIASES.items():
        if corpus == registered and (implied is None or config in ("", implied)):
            if implied is not None and not config:
                continue  # "iemocap" alone names several experiment corpora
            return short
    return key


def _is_registered(name: str) -> bool:
    from data_prep import CORPORA

    return name in CORPORA


def _check_corpus(corpus: str) -> None:
    """``data.corpus`` names a registered corpus (suggesting a near miss when it does not)."""
    from data_prep import CORPORA

    if corpus not in CORPORA:
        raise UsageError(
            f"config key 'data.corpus': unknown corpus {corpus!r}"
            + did_you_mean(corpus, CORPORA.names())
            + f" (known: {', '.join(CORPORA.names())}; see `mmer list`)"
        )


def _check_system(name: Any) -> None:
    """``model.name`` names a registered system (suggesting a near miss when it does not)."""
    from mmer_jax.registry import SYSTEMS

    if not isinstance(name, str) or name not in SYSTEMS:
        raise UsageError(
            f"config key 'model.name': unknown system {name!r}"
            + did_you_mean(str(name), SYSTEMS.names())
            + f" (known: {', '.join(SYSTEMS.names())}; see `mmer list`)"
        )


# -- where the data is ---------------------------------------------------------------------------
DATA_DIR_ENV = "MMER_DATA_DIR"  # where prepared corpora live (TFDS's data_dir)
DATA_ROOT_ENV = "MMER_DATA_ROOT"  # a folder holding each corpus as distributed: <root>/<corpus>/
DEFAULT_DATA_DIR = schema.DataConfig.data_dir


def manual_dir_hint(corpus: str, builder) -> str:
    """How to point a run at ``corpus``'s files, and which files (one line, for errors)."""
    from data_prep import build as build_lib

    return (f"set --config.data.manual_dir=DIR, ${manual_dir_env(corpus)}, or ${DATA_ROOT_ENV} "
            f"to a folder holding {corpus}/ ({build_lib.manual_files(builder, 'data.manual_dir')})")


def manual_dir_env(corpus: str) -> str:
    """The variable naming a corpus's own folder as distributed: ``MMER_EMODB`` for ``emodb``."""
    return "MMER_" + corpus.upper()


def resolve_data_dir(configured: str | None = None, flag: str | None = None) -> tuple[str, str]:
    """The prepared-corpus directory and where it came from, in this order:

    1. ``flag`` (``--data_dir``);
    2. ``configured`` (``data.data_dir``), when it differs from the default;
    3. ``$MMER_DATA_DIR``;
    4. the default, ``~/tensorflow_datasets``.

    Returns:
      ``(path, source)``, source one of "--data_dir", "config", "$MMER_DATA_DIR", "default";
      ``~`` is expanded.
    """
    if flag:
        return os.path.expanduser(flag), "--data_dir"
    if configured and configured != DEFAULT_DATA_DIR:
        return os.path.expanduser(configured), "config"
    if os.environ.get(DATA_DIR_ENV):
        return os.path.expanduser(os.environ[DATA_DIR_ENV]), f"${DATA_DIR_ENV}"
    return os.path.expanduser(DEFAULT_DATA_DIR), "default"


def resolve_manual_dir(
    corpus: str, configured: str | None = None, flag: str | None = None
) -> tuple[str, str]:
    """The corpus as distributed (``manual_dir``) and where it came from, in this order:

    1. ``flag`` (``--manual_dir``);
    2. ``configured`` (``data.manual_dir``; experiment configs fill it from their own variable,
       e.g. ``MMER_EMODB``, or ``$MMER_DATA_ROOT/<folder>``);
    3. ``$MMER_<CORPUS>`` (``MMER_EMODB``, ``MMER_RAVDESS``, ...);
    4. ``$MMER_DATA_ROOT/<corpus>``, when that folder exists;
    5. none (``""``): generated corpora need none; the others must already be prepared.

    Returns:
      ``(path, source)``; ``~`` is expanded.
    """
    if flag:
        return os.path.expanduser(flag), "--manual_dir"
    if configured:
        return os.path.expanduser(configured), "config"
    env = manual_dir_env(corpus)
    if os.environ.get(env):
        return os.path.expanduser(os.environ[env]), f"${env}"
    root = os.environ.get(DATA_ROOT_ENV)
    if root and os.path.isdir(os.path.join(os.path.expanduser(root), corpus)):
        return os.path.join(os.path.expanduser(root), corpus), f"${DATA_ROOT_ENV}/{corpus}"
    return "", "none"


def resolve_data_dirs(
    cfg: ml_collections.ConfigDict, data_dir: str | None = None, manual_dir: str | None = None
) -> str:
    """Sets ``cfg.data.data_dir`` and ``cfg.data.manual_dir`` by :func:`resolve_data_dir` and
    :func:`resolve_manual_dir` and returns the one line a run prints about them."""
    path, source = resolve_data_dir(cfg.data.data_dir, data_dir)
    manual, msource = resolve_manual_dir(cfg.data.corpus, cfg.data.manual_dir, manual_dir)
    cfg.data.data_dir, cfg.data.manual_dir = path, manual
    return describe_data(cfg.data.corpus, cfg.data.config, path, source, manual, msource)


def describe_data(corpus, config, data_dir, source, manual_dir, manual_source) -> str:
    """``data: emodb/default in /d (from $MMER_DATA_DIR); manual_dir /m (from config)``."""
    line = f"data: {corpus}/{config or 'default'} in {data_dir} (from {source})"
    if manual_dir:
        line += f"; manual_dir {manual_dir} (from {manual_source})"
    return line


def check_data(data: Any) -> str:
    """Checks, before a run writes anything, that ``data`` can be opened: the builder config
    exists, and a corpus not yet prepared can be built (its ``manual_dir`` holds files).

    Args:
      data: the run's ``data`` section (a ``DataConfig`` or a ConfigDict of it).

    Returns:
      How the data will be read: "prepared in D", "generated at build time" or
      "will be built from M".

    Raises:
      UsageError: an unknown ``data.config``, a missing or empty ``data.manual_dir`` for a corpus
        that must be built from it, or a corpus that is not built while
        ``data.build_if_missing`` is false; worded in config keys.
    """
    data = schema.from_section(schema.DataConfig, data, "data")
    from data_prep import build as build_lib

    data_dir = os.path.expanduser(data.data_dir) if data.data_dir else None
    try:
        builder = build_lib.get_builder(data.corpus, data.config or None, data_dir)
    except build_lib.BuildError as exc:
        key = "data.config" if "has no config" in str(exc) else "data.corpus"
        raise UsageError(f"config key {key!r}: {exc}") from exc
    where = os.fspath(builder.data_dir)
    if os.path.isfile(os.path.join(where, "dataset_info.json")):
        return f"prepared in {where}"
    if not data.build_if_missing:
        raise UsageError(
            f"corpus {data.corpus!r} (config {data.config!r}) is not built in {where} and "
            f"data.build_if_missing is false; run `mmer data build {data.corpus} --config "
            f"{data.config} --data_dir {data_dir}` first"
        )
    if not getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        return "generated at build time"
    manual = os.path.expanduser(data.manual_dir)
    how = manual_dir_hint(data.corpus, builder)
    if not manual:
        raise UsageError(
            f"config key 'data.manual_dir' is empty, and corpus {data.corpus!r} is not prepared "
            f"in {where}: it is built from its files as distributed; {how}"
        )
    if not os.path.isdir(manual):
        raise UsageError(f"config key 'data.manual_dir': {manual!r} is not a directory; {how}")
    if not os.listdir(manual):
        raise UsageError(f"config key 'data.manual_dir': {manual!r} is empty; {how}")
    return f"will be built from {manual}"


def load(path: str, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """Loads a config file, applies ``--config.KEY=VALUE`` overrides and validates the result.

    Raises:
      UsageError: the file is missing or broken, an override names an unknown key or a value of
        the wrong type, or the result fails :func:`validate`.
    """
    cfg = load_config_file(path)
    apply_overrides(cfg, overrides)
    fill_encoder_states(cfg)
    validate(cfg)
    return cfg


def fill_encoder_states(cfg: ml_collections.ConfigDict) -> None:
    """Sets ``model.encoder_states`` (a system reading ``encoder_feat``: the hidden states per
    frame, L = layers + 1) from ``data.encoder``'s ``encoder.json`` where the config leaves it 0.

    Raises:
      UsageError: ``data.encoder`` is not an imported encoder directory.
    """
    model, data = cfg.get("model"), cfg.get("data")
    if (model is None or data is None or "encoder_states" not in model
            or model.encoder_states or not data.get("encoder")):
        return
    from mmer_jax.data.encoder_cache import encoder_states

    model.encoder_states = encoder_states(data.encoder)
