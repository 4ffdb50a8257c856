"""The jitted steps run under the run's mesh as the context mesh, so the Pallas kernels inside
them partition over its ``data`` axis (mmer_kernels.Partition reads the context mesh)."""

import jax

from mmer_jax.train import sharding as sh
from mmer_jax.train.steps import under_mesh


def test_steps_see_the_run_mesh_as_context_mesh():
    mesh = sh.make_mesh()
    seen = []

    def fn(x):
        seen.append(dict(jax.sharding.get_abstract_mesh().shape))
        return x

    assert under_mesh(fn, mesh)(1) == 1
    assert seen == [{"data": len(jax.devices())}]
    assert not dict(jax.sharding.get_abstract_mesh().shape)  # restored after the call
