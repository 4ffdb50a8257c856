"""Model size and cost: parameter count, FLOPs per example and single-example CPU latency.

FLOPs are counted from the jaxpr by default: 2 x multiply-adds of every ``dot_general`` and
convolution, with ``scan`` bodies multiplied by their length. XLA's own cost analysis
(``method="xla"``) counts a loop body once however many steps it runs, so it undercounts every
recurrent model here (LSTM over frames or utterances); it is kept for comparison. Element-wise
work (activations, norms, softmax) is not counted by the jaxpr method.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core


def count_params(params: Any) -> int:
    """Number of scalars in ``params`` (a params pytree or full variables with a "params" key)."""
    if isinstance(params, dict) and "params" in params:
        params = params["params"]
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def _dot_flops(eqn) -> int:
    (contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    k = math.prod(lhs[d] for d in contract)
    return 2 * k * math.prod(eqn.outvars[0].aval.shape)


def _conv_flops(eqn) -> int:
    rhs = eqn.invars[1].aval.shape
    dn = eqn.params["dimension_numbers"]
    out_ch_dim = dn.rhs_spec[0]  # kernel layout: (out, in, *spatial)
    per_output = math.prod(rhs) // rhs[out_ch_dim]  # in_channels/groups x kernel window
    return 2 * per_output * math.prod(eqn.outvars[0].aval.shape)


def _jaxpr_flops(jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += _dot_flops(eqn)
        elif name == "conv_general_dilated":
            total += _conv_flops(eqn)
        elif name == "scan":
            total += eqn.params["length"] * _jaxpr_flops(eqn.params["jaxpr"].jaxpr)
        elif name == "cond":
            total += max(_jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
        else:  # pjit, custom_jvp/vjp calls, remat, while (counted once: trip count unknown)
            for p in eqn.params.values():
                for sub in p if isinstance(p, (tuple, list)) else (p,):
                    if isinstance(sub, jex_core.ClosedJaxpr):
                        total += _jaxpr_flops(sub.jaxpr)
                    elif isinstance(sub, jex_core.Jaxpr):
                        total += _jaxpr_flops(sub)
    return total


def _batch_size(batch: Dict[str, Any]) -> int:
    return int(jax.tree_util.tree_leaves(batch)[0].shape[0])


def flops_per_example(model, variables, example_batch, *, method: str = "jaxpr") -> float:
    """FLOPs of one eval-mode forward pass, divided by the batch size.

    Args:
      model: a Flax module following the model contract.
      variables: its variables (params and, where used, batch_stats).
      example_batch: a batch dict; its leading axis is the batch size.
      method: "jaxpr" (matmul/conv FLOPs, loops unrolled) or "xla" (compiled cost analysis).
    """
    fn = lambda v, b: model.apply(v, b, train=False)[0]  # noqa: E731
    if method == "jaxpr":
        flops = _jaxpr_flops(jax.make_jaxpr(fn)(variables, example_batch).jaxpr)
    elif method == "xla":
        cost = jax.jit(fn).lower(variables, example_batch).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops = float(cost.get("flops", 0.0))
    else:
        raise ValueError(f"method={method!r} must be 'jaxpr' or 'xla'")
    return float(flops) / _batch_size(example_batch)


def latency_ms(model, variables, example_batch, repeats: int = 20) -> float:
    """Median wall time in ms of a jitted eval forward pass on one example, on the CPU.

    The first example of ``example_batch`` is used; compilation and one warm-up run are excluded.
    """
    cpu = jax.devices("cpu")[0]
    one = jax.tree_util.tree_map(lambda x: jax.device_put(jnp.asarray(x)[:1], cpu), example_batch)
    variables = jax.device_put(variables, cpu)
    fn = jax.jit(lambda v, b: model.apply(v, b, train=False)[0])
    jax.block_until_ready(fn(variables, one))
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(variables, one))
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))
