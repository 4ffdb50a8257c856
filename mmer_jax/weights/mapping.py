"""From a checkpoint's named tensors to a Flax variable tree, checked tensor by tensor.

A converter reads tensors from a :class:`TensorSource` through the layout helpers (``dense``,
``heads_in``, ``layer_norm``, ``conv``, ``batch_norm``, ...), which transpose PyTorch's layouts
into Flax's and check each tensor's shape against what the architecture's config implies,
raising one line that names the file and the tensor. :func:`assemble` then places the results
into the module's variable tree (from ``jax.eval_shape`` of its ``init``) and refuses a tree
with a leaf left unfilled or filled with the wrong shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from mmer_jax.errors import CheckpointError


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One variable for the Flax tree and the checkpoint tensor(s) it came from."""

    source: str  # the checkpoint's tensor name (for messages)
    value: np.ndarray  # float32, already in Flax's layout
    file: str = ""  # the file holding it (for messages)


class TensorSource:
    """A checkpoint's tensors by name, with the file they came from, recording which were used.

    Args:
      tensors: name -> array, in any float dtype (read as float32).
      origin: the file (or directory) the tensors were read from, named in errors.
      prefix: prepended to every name asked for (``"model.encoder."`` for a wrapped model).
      files: the file of each tensor where they come from several (a directory, shards); an
        error about a tensor names its file.
    """

    def __init__(self, tensors: Mapping[str, np.ndarray], origin: str, prefix: str = "",
                 files: Mapping[str, str] | None = None):
        self._tensors = dict(tensors)
        self.origin = origin
        self.prefix = prefix
        self._files = dict(files or {})
        self._used: set[str] = set()

    def with_prefix(self, prefix: str) -> "TensorSource":
        """A view whose names are read under ``prefix`` (shares the record of used tensors)."""
        view = TensorSource.__new__(TensorSource)
        view._tensors, view.origin, view.prefix, view._used, view._files = (
            self._tensors, self.origin, prefix, self._used, self._files)
        return view

    def names(self) -> list[str]:
        return sorted(self._tensors)

    def has(self, name: str) -> bool:
        return self.prefix + name in self._tensors

    def get(self, name: str, shape: tuple[int, ...] | None = None) -> Tensor:
        """The tensor ``prefix + name`` as float32, its shape checked when ``shape`` is given.

        Raises:
          CheckpointError: no such tensor, or a shape other than ``shape``.
        """
        full = self.prefix + name
        if full not in self._tensors:
            near = [n for n in self._tensors if n.endswith(name.split(".")[-1])][:3]
            hint = f"; tensors ending alike: {', '.join(near)}" if near else ""
            raise CheckpointError(f"{self.origin}: no tensor {full!r}{hint}")
        value = np.asarray(self._tensors[full]).astype(np.float32)
        file = self._files.get(full, self.origin)
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise CheckpointError(f"{file}: tensor {full!r} has shape {list(value.shape)}; the "
                                  f"architecture's config implies {list(shape)}")
        self._used.add(full)
        return Tensor(full, value, file)

    def used(self) -> list[str]:
        """Names read so far."""
        return sorted(self._used)

    def unused(self) -> list[str]:
        """Names never read (decoder weights, pretraining heads, ...), recorded on import."""
        return sorted(set(self._tensors) - self._used)


# ----------------------------------------------------------------------------- layout helpers
def dense(src: TensorSource, name: str, d_in: int, d_out: int,
          bias: bool = True) -> dict[str, Tensor]:
    """A PyTorch ``Linear`` (``name.weight`` [out, in], ``name.bias``) as a Flax ``Dense``."""
    w = src.get(f"{name}.weight", (d_out, d_in))
    out = {"kernel": Tensor(w.source, w.value.T, w.file)}
    if bias:
        out["bias"] = src.get(f"{name}.bias", (d_out,))
    return out


def heads_in(src: TensorSource, name: str, d_in: int, heads: int,
             bias: bool = True) -> dict[str, Tensor]:
    """A q/k/v ``Linear`` as the ``DenseGeneral`` of :class:`blocks.SelfAttention`:
    kernel [D_in, H, Dh], bias [H, Dh]."""
    d = dense(src, name, d_in, d_in, bias)
    dh = d_in // heads
    k, b = d["kernel"], d.get("bias")
    out = {"kernel": Tensor(k.source, k.value.reshape(d_in, heads, dh), k.file)}
    if bias:
        out["bias"] = Tensor(b.source, b.value.reshape(heads, dh), b.file)
    return out


def heads_out(src: TensorSource, name: str, d_model: int, heads: int) -> dict[str, Tensor]:
    """The attention's output ``Linear`` as a ``DenseGeneral`` over (H, Dh): kernel
    [H, Dh, D]."""
    d = dense(src, name, d_model, d_model)
    k = d["kernel"]
    return {"kernel": Tensor(k.source, k.value.reshape(heads, d_model // heads, d_model), k.file),
            "bias": d["bias"]}


def layer_norm(src: TensorSource, name: str, dim: int, weight: str = "weight",
               bias: str = "bias") -> dict[str, Tensor]:
    """A ``LayerNorm`` (or affine ``GroupNorm``) as Flax ``scale`` / ``bias``."""
    return {"scale": src.get(f"{name}.{weight}", (dim,)),
            "bias": src.get(f"{name}.{bias}", (dim,))}


def conv(src: TensorSource, name: str, shape: tuple[int, ...],
         bias: bool = True) -> dict[str, Tensor]:
    """A PyTorch ``ConvNd`` weight ``[out, in/groups, *kernel]`` (``shape``) as a Flax ``Conv``
    kernel ``[*kernel, in/groups, out]``."""
    w = src.get(f"{name}.weight", shape)
    nd = len(shape) - 2
    kernel = np.transpose(w.value, tuple(range(2, 2 + nd)) + (1, 0))
    out = {"kernel": Tensor(w.source, kernel, w.file)}
    if bias:
        out["bias"] = src.get(f"{name}.bias", (shape[0],))
    return out


def batch_norm(src: TensorSource, name: str, dim: int) -> tuple[dict, dict]:
    """A PyTorch ``BatchNorm`` as (params ``scale``/``bias``, batch_stats ``mean``/``var``)."""
    params = {"scale": src.get(f"{name}.weight", (dim,)), "bias": src.get(f"{name}.bias", (dim,))}
    stats = {"mean": src.get(f"{name}.running_mean", (dim,)),
             "var": src.get(f"{name}.running_var", (dim,))}
    return params, stats


# ----------------------------------------------------------------------------- assembly
def flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Nested dicts -> {path tuple: leaf}."""
    out: dict[tuple[str, ...], Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, v in flat.items():
        node = out
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = v
    return out


def assemble(template: Mapping[str, Any], converted: Mapping[str, Any], *, origin: str,
             architecture: str) -> dict[str, Any]:
    """The variable tree ``template`` (``{"params": ..., "batch_stats": ...}`` of shape structs)
    filled from ``converted`` (the same nesting, :class:`Tensor` leaves).

    Returns:
      The variables as nested dicts of float32 numpy arrays.

    Raises:
      CheckpointError: a leaf of the template that no tensor fills, or a tensor whose shape
        differs from the leaf's; the message names the file, the tensor and the variable.
      ValueError: ``converted`` has a path the template lacks (a converter bug, not a user's).
    """
    want, got = flatten(template), flatten(converted)
    extra = sorted("/".join(p) for p in set(got) - set(want))
    if extra:
        raise ValueError(f"{architecture} converter produced variables the module lacks: "
                         f"{extra[:5]}")
    missing = sorted("/".join(p) for p in set(want) - set(got))
    if missing:
        raise CheckpointError(f"{origin}: no tensor for {architecture} variable {missing[0]}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    out = {}
    for path, leaf in want.items():
        t = got[path]
        if tuple(t.value.shape) != tuple(leaf.shape):
            raise CheckpointError(
                f"{t.file or origin}: tensor {t.source!r} gives {architecture} variable "
                f"{'/'.join(path)} "
                f"shape {list(t.value.shape)}; the architecture expects {list(leaf.shape)}")
        out[path] = np.ascontiguousarray(t.value, np.float32)
    return unflatten(out)
