"""Data parallelism: a 1-D ``data`` mesh over every device, batches split on it, state replicated.

With ``train.fsdp = F > 1`` the mesh is 2-D, ``("data", "fsdp")`` of shape ``(N / F, F)``: the
batch is split over both axes (every device still sees ``B / N`` rows) and the large leaves of the
train state (parameters and the optimizer moments shaped like them) are stored split over
``fsdp`` (:func:`state_sharding`), so each device holds about ``1 / F`` of them (FSDP / ZeRO-3
style: gathered whole for a step's compute, gradients reduce-scattered back to the shards).

Multi-host: every process calls :func:`maybe_initialize_distributed` first; each host then feeds
only its slice of the global batch and :func:`to_global` stitches the slices into one array.
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Iterable, Iterator

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mmer_jax.errors import UsageError


def cluster_kind(environ=None) -> str | None:
    """Which multi-process start-up the environment asks for, or None for a single process.

    * ``"explicit"``: ``MMER_COORDINATOR`` (host:port) with ``MMER_NUM_PROCESSES`` and
      ``MMER_PROCESS_ID``.
    * ``"auto"``: ``MMER_DISTRIBUTED=1`` (or ``auto``): JAX's own cluster detection, whatever
      cluster it supports (SLURM, Open MPI, Kubernetes, Cloud TPU, ...).
    * ``"slurm"`` / ``"openmpi"``: a SLURM job step of more than one task (``SLURM_JOB_ID`` and
      ``SLURM_NTASKS > 1``) or an Open MPI launch of more than one rank
      (``OMPI_COMM_WORLD_SIZE > 1``), detected by JAX.

    ``MMER_DISTRIBUTED=0`` turns detection off (a single process even inside such a job).
    """
    env = os.environ if environ is None else environ
    if env.get("MMER_COORDINATOR"):
        return "explicit"
    forced = env.get("MMER_DISTRIBUTED", "").strip().lower()
    if forced in ("0", "false", "off"):
        return None
    if forced in ("1", "true", "auto", "on"):
        return "auto"
    if "SLURM_JOB_ID" in env and _int(env.get("SLURM_NTASKS")) > 1:
        return "slurm"
    if _int(env.get("OMPI_COMM_WORLD_SIZE")) > 1:
        return "openmpi"
    return None


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def maybe_initialize_distributed(environ=None) -> str | None:
    """Calls ``jax.distributed.initialize`` when the environment asks for it (:func:`cluster_kind`).

    Explicit: ``MMER_COORDINATOR`` (host:port), ``MMER_NUM_PROCESSES`` and ``MMER_PROCESS_ID``.
    Otherwise ``jax.distributed.initialize()`` with no arguments, JAX's cluster auto-detection.
    On CPU the gloo collectives are used (``MMER_CPU_COLLECTIVES``, default gloo). Must run before
    any other JAX call of the process.

    Returns:
      The kind of start-up done (:func:`cluster_kind`), None when a single process.

    Raises:
      KeyError: ``MMER_COORDINATOR`` is set but the other two variables are not.
    """
    env = os.environ if environ is None else environ
    kind = cluster_kind(env)
    if kind is None:
        return None
    collectives = env.get("MMER_CPU_COLLECTIVES", "gloo")
    if collectives and jax.config.jax_platforms in (None, "", "cpu"):
        jax.config.update("jax_cpu_collectives_implementation", collectives)
    if kind == "explicit":
        jax.distributed.initialize(
            coordinator_address=env["MMER_COORDINATOR"],
            num_processes=int(env["MMER_NUM_PROCESSES"]),
            process_id=int(env["MMER_PROCESS_ID"]),
        )
    else:
        jax.distributed.initialize()
    return kind


def make_mesh(num_devices: int | None = None, fsdp: int = 1) -> jax.sharding.Mesh:
    """A 1-D ``("data",)`` mesh over ``num_devices`` devices (all by default); with ``fsdp > 1``
    a 2-D ``("data", "fsdp")`` mesh of shape ``(devices / fsdp, fsdp)``.

    With several processes the devices are taken evenly from every process (``num_devices /
    process_count`` each, its first local ones), so each host feeds its own devices. The
    ``fsdp`` axis is the inner one: its groups are consecutive devices (the same host when
    ``fsdp`` divides the devices per host), so its gathers stay inside a host.

    Args:
      num_devices: devices of the mesh (``train.num_devices``); None for every device.
      fsdp: devices on the ``fsdp`` axis (``train.fsdp``); 1 for pure data parallelism.

    Raises:
      UsageError: more devices asked for (``train.num_devices``) than there are, a count that
        does not divide by the number of processes, or one that does not divide by ``fsdp``.
    """
    devices = jax.devices()
    if num_devices is not None:
        if num_devices > len(devices):
            raise UsageError(
                f"config key 'train.num_devices': {num_devices} devices asked for, "
                f"{len(devices)} available ({devices[0].platform}); 0 uses every device"
            )
        hosts = jax.process_count()
        if num_devices % hosts:
            raise UsageError(
                f"config key 'train.num_devices': {num_devices} devices do not divide by the "
                f"{hosts} processes; 0 uses every device"
            )
        per = num_devices // hosts
        local = [[d for d in devices if d.process_index == p] for p in range(hosts)]
        devices = [d for host_devices in local for d in host_devices[:per]]
    if fsdp == 1:
        return jax.make_mesh((len(devices),), ("data",), (jax.sharding.AxisType.Auto,),
                             devices=devices)
    if fsdp < 1 or len(devices) % fsdp:
        raise UsageError(
            f"config key 'train.fsdp': {fsdp} must divide the {len(devices)} devices of the mesh "
            f"(train.num_devices); 1 is pure data parallelism"
        )
    grid = np.asarray(devices, dtype=object).reshape(len(devices) // fsdp, fsdp)
    return jax.sharding.Mesh(grid, ("data", "fsdp"), axis_types=(jax.sharding.AxisType.Auto,) * 2)


def batch_axes(mesh) -> tuple[str, ...]:
    """The mesh axes a batch is split over: ``("data",)``, or ``("data", "fsdp")`` on an FSDP
    mesh (every device gets its own rows)."""
    return tuple(a for a in ("data", "fsdp") if a in mesh.axis_names)


def data_sharding(mesh) -> NamedSharding:
    """Arrays split along their leading (batch) axis over the mesh's batch axes
    (:func:`batch_axes`)."""
    axes = batch_axes(mesh)
    return NamedSharding(mesh, P(axes[0] if len(axes) == 1 else axes))


def fsdp_size(mesh) -> int:
    """Devices on the mesh's ``fsdp`` axis (1 when it has none)."""
    return dict(mesh.shape).get("fsdp", 1)


def leaf_sharding(mesh, shape: tuple[int, ...], min_size: int) -> NamedSharding:
    """Where one train-state leaf of ``shape`` lives: split over ``fsdp`` along its largest
    axis divisible by the ``fsdp`` size when it has at least ``min_size`` elements, else
    replicated.

    Args:
      mesh: the run mesh (:func:`make_mesh`).
      shape: the leaf's shape.
      min_size: elements below which a leaf stays replicated (``train.fsdp_min_size``).
    """
    n = fsdp_size(mesh)
    if n == 1 or int(np.prod(shape, dtype=np.int64)) < max(min_size, 1):
        return replicated(mesh)
    dims = [d for d in range(len(shape)) if shape[d] % n == 0]
    if not dims:
        return replicated(mesh)
    dim = max(dims, key=lambda d: (shape[d], -d))  # the largest; the first of equals
    spec = [None] * len(shape)
    spec[dim] = "fsdp"
    return NamedSharding(mesh, P(*spec))


def state_sharding(mesh, abstract_state, min_size: int):
    """The sharding of every leaf of a train state (:func:`leaf_sharding`), as a pytree.

    Parameters and the optimizer moments of the same shape get the same sharding, so an
    optimizer update is elementwise on the shards. Without an ``fsdp`` axis of size > 1 this is
    :func:`replicated` (a single sharding, a prefix of any tree).

    Args:
      mesh: the run mesh.
      abstract_state: the state, or its ``jax.eval_shape`` (leaves with ``.shape``).
      min_size: ``train.fsdp_min_size``.
    """
    if fsdp_size(mesh) == 1:
        return replicated(mesh)
    return jax.tree.map(lambda x: leaf_sharding(mesh, tuple(x.shape), min_size), abstract_state)


def replicated(mesh) -> NamedSharding:
    """Arrays copied whole to every device of the mesh (the train state)."""
    return NamedSharding(mesh, P())


def to_global(host_batch: dict[str, np.ndarray], mesh) -> dict[str, jax.Array]:
    """Host-local batch slices -> global arrays sharded along ``data`` (leading axis).

    Args:
      host_batch: this host's rows of every key, [B / hosts, ...] each.
      mesh: the run mesh (``("data",)`` or ``("data", "fsdp")``).

    Returns:
      The same keys as global [B, ...] arrays.
    """
    sharding = data_sharding(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
        for k, v in host_batch.items()
    }


def prefetch_to_mesh(
    host_batches: Iterable[dict[str, np.ndarray]], mesh, size: int = 2
) -> Iterator[dict[str, jax.Array]]:
    """Host batches -> global device batches (:func:`to_global`), ``size`` transfers in flight.

    The transfers are asynchronous, so while the caller's step runs on batch ``i`` the batches
    ``i + 1 .. i + size`` are already being copied to the devices.
    """
    queue: collections.deque = collections.deque()
    it = iter(host_batches)

    def enqueue(n: int) -> None:
        for host in itertools.islice(it, n):
            queue.append(to_global(host, mesh))

    enqueue(size)
    while queue:
        batch = queue.popleft()
        enqueue(1)
        yield batch


def to_host(x) -> np.ndarray:
    """A (possibly multi-host) global array -> the full numpy array on every host."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))
