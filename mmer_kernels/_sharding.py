"""Partitioning of the ops under a sharded jit: ``jax.shard_map`` over batch and head axes.

A ``pallas_call`` has no partitioning rule: under a data-parallel jit XLA gathers its operands
and runs the whole batch on every device. Both ops are independent across batch rows and across
heads, so each runs its kernels inside a ``jax.shard_map`` that splits B (and H) over the mesh
axes a :class:`Partition` names -- no collective in the forward or the backward (the backward of
a shard_map is a shard_map of the backward). The kernels' ``out_shape`` carries the varying mesh
axes of their inputs (:func:`out_struct`), so ``check_vma=True`` holds.

Imports jax only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
from jax.sharding import PartitionSpec as P


@dataclasses.dataclass(frozen=True)
class Partition:
    """Mesh axes an op splits its batch and head dimensions over.

    Attention's q/k/v [B, L, H, D] (and lengths [B], masks [B, L], a bias over B or H) split
    along B and H; the dynamic convolution's x [B, T, C] along B and C (whole heads, C = H * C/H)
    and its logits [B, T, H, K] along B and H.

    Attributes:
        batch: names of the mesh axes B is split over (data parallelism), e.g. ``("data",)``.
        heads: names of the mesh axes H is split over (heads of attention, heads of the dynamic
            convolution's kernels; C = H * C/H splits with them), e.g. ``("model",)``.
        mesh: a ``jax.sharding.Mesh`` or ``AbstractMesh``; None takes the context mesh
            (``jax.set_mesh``) at trace time.

    Axes the mesh lacks, axes of size 1 and axes already manual (inside a caller's shard_map)
    are ignored, so the default partition is a no-op without a mesh; with none left the op runs
    unpartitioned.

    Raises:
        TypeError: ``batch`` or ``heads`` is not a tuple of str (a bare str is accepted and
            wrapped).
    """

    batch: tuple[str, ...] = ("data",)
    heads: tuple[str, ...] = ()
    mesh: Any = None

    def __post_init__(self):
        for field in ("batch", "heads"):
            val = getattr(self, field)
            if isinstance(val, str):
                val = (val,)
                object.__setattr__(self, field, val)
            if not isinstance(val, tuple) or not all(isinstance(a, str) for a in val):
                raise TypeError(f"Partition.{field}={val!r} must be a tuple of mesh axis names")


# What the ops do when the caller passes nothing: split B over a "data" axis of the context mesh.
DEFAULT_PARTITION = Partition()


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A :class:`Partition` resolved against a mesh and an op's B and H.

    Attributes:
        mesh: the mesh to shard_map over.
        batch: the mesh axes B is split over (``None`` when none), as a PartitionSpec entry.
        heads: the mesh axes H is split over (``None`` when none).
    """

    mesh: Any
    batch: tuple[str, ...] | None
    heads: tuple[str, ...] | None

    def spec(self, *dims: str | None) -> P:
        """PartitionSpec from dim tags: "b" -> the batch axes, "h" -> the head axes, None."""
        return P(*({"b": self.batch, "h": self.heads, None: None}[d] for d in dims))


def resolve(partition: Partition | None, batch: int, heads: int) -> Resolved | None:
    """The mesh axes that actually split B and H, or None when the op runs unpartitioned.

    Args:
        partition: the caller's Partition (None: unpartitioned).
        batch: B of the op's operands.
        heads: H of the op's operands.

    Returns:
        A :class:`Resolved` when at least one named axis is in the mesh, has size > 1 and is not
        manual already; else None.

    Raises:
        ValueError: B (or H) is not divisible by the product of the sizes of its axes.
    """
    if partition is None:
        return None
    mesh = partition.mesh if partition.mesh is not None else jax.sharding.get_abstract_mesh()
    if mesh is None or not mesh.axis_names:
        return None
    types = dict(zip(mesh.axis_names, mesh.axis_types, strict=True))
    free = {a for a in mesh.axis_names
            if mesh.shape[a] > 1 and types[a] != jax.sharding.AxisType.Manual}
    out = []
    for names, size, what in ((partition.batch, batch, "batch B"),
                              (partition.heads, heads, "heads H")):
        axes = tuple(a for a in names if a in free)
        n = math.prod(mesh.shape[a] for a in axes)
        if size % n:
            raise ValueError(f"{what}={size} is not divisible by the {n} devices of mesh axes "
                             f"{axes}; pad the batch or change the Partition")
        out.append(axes or None)
    if out == [None, None]:
        return None
    return Resolved(mesh, *out)


def shard(fn: Callable, resolved: Resolved, in_specs: tuple, out_specs: Any, *,
          interpret: bool = False, check_vma: bool | None = None) -> Callable:
    """``jax.shard_map(fn)`` over the resolved axes only (other mesh axes stay automatic).

    Args:
        fn: the per-shard function (positional arguments).
        resolved: from :func:`resolve`.
        in_specs: one PartitionSpec per positional argument (any spec for a None argument).
        out_specs: PartitionSpec(s) of the outputs.
        interpret: the kernels run in Pallas' interpreter. Its HLO lowering (jax 0.10.2)
            evaluates the kernel with primitives whose operands disagree on varying axes
            ("Primitive pad requires varying manual axes to match"), so interpret mode turns
            ``check_vma`` off; the compiled kernels (Triton) keep ``check_vma=True``.
        check_vma: overrides that choice (the Mosaic GPU kernels pass False: ``plgpu.kernel``
            of jax 0.10/0.11 traces its body with the check off and drops the outputs' varying
            axes, so a checked shard_map refuses their custom_vjp).

    Returns:
        The sharded function.
    """
    axes = set(resolved.batch or ()) | set(resolved.heads or ())
    return jax.shard_map(fn, mesh=resolved.mesh, in_specs=in_specs, out_specs=out_specs,
                         axis_names=axes,
                         check_vma=not interpret if check_vma is None else check_vma)


def out_struct(shape, dtype, *like) -> jax.ShapeDtypeStruct:
    """``jax.ShapeDtypeStruct`` for a pallas_call output, varying over the manual mesh axes that
    any of ``like`` varies over (empty outside a shard_map), so that the kernels run inside
    ``jax.shard_map(..., check_vma=True)``.

    Args:
        shape: the output shape.
        dtype: the output dtype.
        *like: the arrays (or None) the output depends on.

    Returns:
        A ShapeDtypeStruct with ``manual_axis_type`` set.
    """
    varying = frozenset().union(*(jax.typeof(x).manual_axis_type.varying
                                  for x in like if x is not None))
    return jax.ShapeDtypeStruct(shape, dtype,
                                manual_axis_type=jax.sharding.ManualAxisType(varying=varying))
