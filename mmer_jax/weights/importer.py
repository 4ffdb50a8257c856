"""``mmer encoders import``: a checkpoint as distributed -> an imported encoder directory.

read (``readers`` / ``ctranslate2``) -> convert (``convert.CONVERTERS``) -> check every tensor
against the module's variable tree (``mapping.assemble``) -> write atomically (``store.save``).
No torch is needed at any step.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable, Optional

from mmer_jax.errors import CheckpointError, UsageError
from mmer_jax.weights import store
from mmer_jax.weights.convert import CONVERTERS, FORMATS, Checkpoint, Converted
from mmer_jax.weights.mapping import TensorSource, assemble
from mmer_jax.weights.readers import read_hf_dir, read_state_dict, sha256_file

# --arch values of the state-dict formats, and the converter kind each maps to.
STATE_DICT_ARCHS = {
    "torchvision": ("resnet18", "resnet34", "resnet50"),
    "timm": ("inception_resnet_v2",),
}


def read_checkpoint(fmt: str, path: str | os.PathLike, arch: Optional[str] = None) -> Checkpoint:
    """Reads a checkpoint of format ``fmt`` (see :mod:`mmer_jax.weights.convert`).

    Raises:
      UsageError: an unknown format, or ``--arch`` missing / unknown for torchvision and timm.
      CheckpointError: from the readers (missing or malformed files).
    """
    path = os.fspath(Path(path).expanduser())
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: must be one of {', '.join(FORMATS)}")
    if arch and fmt not in STATE_DICT_ARCHS:
        raise UsageError(f"--arch is for --format torchvision|timm; a {fmt} checkpoint names its "
                         "architecture itself")
    if fmt == "hf":
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "model.bin")) \
                and not os.path.isfile(os.path.join(path, "model.safetensors")):
            raise CheckpointError(f"{path}: holds model.bin, a CTranslate2 model directory: use "
                                  "--format ctranslate2")
        d = read_hf_dir(path)
        if not d.config.get("model_type"):
            raise CheckpointError(f"{os.path.join(path, 'config.json')}: no model_type (a "
                                  "Hugging Face model's config.json names it)")
        kind = str(d.config["model_type"])
        return Checkpoint(fmt, path, kind, TensorSource(d.tensors, path, files=d.tensor_files),
                          d.config, d.files)
    if fmt == "ctranslate2":
        from mmer_jax.weights.ctranslate2 import read_ctranslate2

        model_bin = os.path.join(path, "model.bin") if os.path.isdir(path) else path
        m = read_ctranslate2(model_bin)
        files = [model_bin] + [os.path.join(os.path.dirname(model_bin), f)
                               for f in ("config.json",)
                               if os.path.isfile(os.path.join(os.path.dirname(model_bin), f))]
        return Checkpoint(fmt, path, m.spec, TensorSource(m.variables, model_bin), None, files)
    known = STATE_DICT_ARCHS[fmt]
    if os.path.isdir(path):
        hf = os.path.isfile(os.path.join(path, "config.json"))
        raise CheckpointError(f"{path}: a directory; --format {fmt} takes one state-dict file "
                              "(.safetensors, .pth, .bin)"
                              + ("; with its config.json it looks like a Hugging Face model "
                                 "directory: --format hf" if hf else ""))
    if arch not in known:
        raise UsageError(f"--format {fmt} needs --arch, one of {', '.join(known)}"
                         + (f" (got {arch!r})" if arch else ""))
    return Checkpoint(fmt, path, arch, TensorSource(read_state_dict(path), path), None, [path])


def convert(ckpt: Checkpoint) -> Converted:
    """The registered converter for the checkpoint's format and kind.

    Raises:
      CheckpointError: no converter for that kind (names the known ones), or the converter's
        own errors (missing tensors, shapes that do not fit).
    """
    key = f"{ckpt.format}:{ckpt.kind}"
    if key not in CONVERTERS:
        known = sorted(k.split(":", 1)[1] for k in CONVERTERS if k.startswith(ckpt.format + ":"))
        what = {"hf": "config.json model_type", "ctranslate2": "model spec"}.get(ckpt.format,
                                                                                "--arch")
        raise CheckpointError(f"{ckpt.path}: {what} {ckpt.kind!r} has no {ckpt.format} "
                              f"converter (known: {', '.join(known)})")
    return CONVERTERS[key](ckpt)


def variables_of(converted: Converted, origin: str) -> dict:
    """The converted tensors checked against the architecture's variable tree."""
    import jax

    from mmer_jax.registry import ARCHITECTURES

    arch = ARCHITECTURES[converted.architecture]
    module = arch.module(converted.config)
    x, mask = arch.dummy_input(converted.config, 1)
    template = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x, mask))
    return assemble(template, converted.variables, origin=origin,
                    architecture=converted.architecture)


def import_checkpoint(fmt: str, path: str | os.PathLike, out: Optional[str | os.PathLike] = None,
                      *, arch: Optional[str] = None, name: Optional[str] = None,
                      force: bool = False,
                      log: Callable[[str], None] = lambda s: None) -> Path:
    """Imports a checkpoint; returns the encoder directory.

    Args:
      fmt: "hf", "ctranslate2", "torchvision" or "timm".
      path: the model directory or state-dict file as distributed.
      out: the encoder directory (default ``$MMER_CACHE/encoders/<name>-<sha12>``).
      arch: the architecture of a state dict (torchvision, timm).
      name: the default directory's name part (default: the converter's, e.g. whisper-base).
      force: replace an existing import at ``out`` (without it, an import of the same files
        at ``out`` is returned as it is, and any other content at ``out`` is refused).
      log: progress lines.

    Raises:
      UsageError, CheckpointError: see :func:`read_checkpoint`, :func:`convert`,
        :func:`mmer_jax.weights.store.save`.
    """
    ckpt = read_checkpoint(fmt, path, arch)
    if out is not None:  # before the slow part; an import already there is decided below
        store.check_out(Path(out), True, sources=(ckpt.path,))
    log(f"read {len(ckpt.tensors.names())} tensors from {ckpt.path} ({fmt}, {ckpt.kind})")
    files = [{"name": os.path.relpath(f, ckpt.path) if os.path.isdir(ckpt.path)
              else os.path.basename(f), "bytes": os.path.getsize(f), "sha256": sha256_file(f)}
             for f in ckpt.files]
    digest = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()
    converted = convert(ckpt)
    if out is None:
        out = store.encoders_dir() / f"{name or converted.name}-{digest[:12]}"
    if not force and _same_import(out, digest):
        log(f"{out}: already imported from these files (sha256 {digest[:12]})")
        return Path(out)
    store.check_out(Path(out), force, sources=(ckpt.path,))
    variables = variables_of(converted, ckpt.path)
    ignored = ckpt.tensors.unused()
    # Unused tensors beside the ones read (same top-level name), that no ignorable pattern
    # explains: the config describes less than the weights hold. Other top-level entries of a
    # training checkpoint (optimizer state, EMA copies) are not the encoder's business.
    read_roots = {re.split(r"[./]", n, maxsplit=1)[0] for n in ckpt.tensors.used()}
    unexpected = [n for n in ignored if re.split(r"[./]", n, maxsplit=1)[0] in read_roots
                  and not any(re.search(p, n) for p in converted.ignorable)]
    if unexpected:
        raise CheckpointError(
            f"{ckpt.path}: {len(unexpected)} tensors fit no part of the {converted.architecture} "
            f"architecture its config describes ({', '.join(unexpected[:3])}"
            f"{', ...' if len(unexpected) > 3 else ''}): does the config name fewer layers than "
            "the weights hold?")
    if ignored:
        shown = ", ".join(ignored[:3]) + (", ..." if len(ignored) > 3 else "")
        log(f"left out {len(ignored)} tensors the encoder does not use ({shown}; all listed in "
            "encoder.json)")
    source = {"format": fmt, "path": os.path.abspath(ckpt.path), "kind": ckpt.kind,
              "sha256": digest, "files": files}
    saved = store.save(out, architecture=converted.architecture, config=converted.config,
                       variables=variables, source=source, ignored=ignored,
                       assets=converted.assets, force=force)
    log(f"{converted.architecture} -> {saved}")
    return saved


def _same_import(out: str | os.PathLike, digest: str) -> bool:
    try:
        return store.read_record(out)["source"]["sha256"] == digest
    except (CheckpointError, KeyError, TypeError):
        return False
