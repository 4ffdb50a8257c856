"""Data parallelism: a 1-D ``data`` mesh over every device, batches split on it, state replicated.

Multi-host: every process calls :func:`maybe_initialize_distributed` first; each host then feeds
only its slice of the global batch and :func:`to_global` stitches the slices into one array.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mmer_jax.errors import UsageError


def maybe_initialize_distributed() -> None:
    """Calls ``jax.distributed.initialize`` when the MMER_COORDINATOR env variables ask for it.

    ``MMER_COORDINATOR`` (host:port), ``MMER_NUM_PROCESSES`` and ``MMER_PROCESS_ID``; on CPU the
    gloo collectives are used. Does nothing without ``MMER_COORDINATOR``.

    Raises:
      KeyError: ``MMER_COORDINATOR`` is set but the other two variables are not.
    """
    addr = os.environ.get("MMER_COORDINATOR")
    if not addr:
        return
    if os.environ.get("MMER_CPU_COLLECTIVES", "gloo") and jax.config.jax_platforms in (
        None,
        "",
        "cpu",
    ):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=addr,
        num_processes=int(os.environ["MMER_NUM_PROCESSES"]),
        process_id=int(os.environ["MMER_PROCESS_ID"]),
    )


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
    """A 1-D ``("data",)`` mesh over the first ``num_devices`` devices (all by default).

    Raises:
      UsageError: more devices asked for (``train.num_devices``) than this process sees.
    """
    devices = jax.devices()
    if num_devices is not None:
        if num_devices > len(devices):
            raise UsageError(
                f"config key 'train.num_devices': {num_devices} devices asked for, "
                f"{len(devices)} available ({devices[0].platform}); 0 uses every device"
            )
        devices = devices[:num_devices]
    return jax.make_mesh((len(devices),), ("data",), (jax.sharding.AxisType.Auto,), devices=devices)


def data_sharding(mesh) -> NamedSharding:
    """Arrays split along their leading (batch) axis over the mesh's ``data`` axis."""
    return NamedSharding(mesh, P("data"))


def replicated(mesh) -> NamedSharding:
    """Arrays copied whole to every device of the mesh (the train state)."""
    return NamedSharding(mesh, P())


def to_global(host_batch: dict[str, np.ndarray], mesh) -> dict[str, jax.Array]:
    """Host-local batch slices -> global arrays sharded along ``data`` (leading axis).

    Args:
      host_batch: this host's rows of every key, [B / hosts, ...] each.
      mesh: the ``("data",)`` mesh.

    Returns:
      The same keys as global [B, ...] arrays.
    """
    sharding = data_sharding(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
        for k, v in host_batch.items()
    }


def to_host(x) -> np.ndarray:
    """A (possibly multi-host) global array -> the full numpy array on every host."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))
