"""Small autotuner: times candidate block sizes and records the best in tuned_blocks.json.

Usage (GPU only): ``python -m kernels.autotune attention 32 300 300 8 64 bfloat16``
or ``python -m kernels.autotune dynamic_conv 32 300 512 8 7 bfloat16``.
The dispatch reads the table on exact key match (device kind, shape, dtype, flags).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import sys

import jax
import jax.numpy as jnp

from kernels import _common
from kernels import attention as att
from kernels import dynamic_conv as dc
from kernels._timing import time_side_by_side


class NeedsGPU(RuntimeError):
    """Raised when asked to tune on a machine without a GPU."""


def _require_gpu():
    if jax.default_backend() != "gpu":
        raise NeedsGPU("autotuning times the Pallas kernels, which need a GPU; this backend is "
                       f"{jax.default_backend()!r}, so nothing was tuned and the table is "
                       "unchanged")


def _fits(block, length):
    return block <= max(16, _common.next_pow2(length))


def attention_candidates(lq, lk, d):
    """Forward-stage candidates: tiles no larger than the (rounded-up) sequence."""
    for bq, bk, warps, stages in itertools.product((32, 64, 128), (32, 64, 128), (4, 8), (2, 3)):
        if _fits(bq, lq) and _fits(bk, lk) and not (d >= 128 and bq * bk > 64 * 128):
            yield dict(block_q=bq, block_k=bk, num_warps=warps, num_stages=stages)


def _best(fns, args, repeats):
    times = time_side_by_side(fns, args, repeats=repeats)
    ok = {k: v for k, v in times.items() if isinstance(v, float)}
    if not ok:
        raise RuntimeError(f"every candidate failed: {times}")
    name = min(ok, key=ok.get)
    return name, ok[name]


def tune_attention(b, lq, lk, h, d, dtype, *, causal=False, repeats=10):
    """Two stages: forward tiles by forward time, then backward tiles by fwd+bwd time."""
    _require_gpu()
    dtype = jnp.dtype(dtype)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    q = jax.random.normal(keys[0], (b, lq, h, d), dtype)
    k = jax.random.normal(keys[1], (b, lk, h, d), dtype)
    v = jax.random.normal(keys[2], (b, lk, h, d), dtype)
    base = att.BlockSizes.default(lq, lk, d, dtype)

    def fwd(blocks):
        return jax.jit(lambda q, k, v: att.attention(q, k, v, causal=causal, block_sizes=blocks,
                                                     implementation="pallas"))

    cands = {json.dumps(c): att.BlockSizes(**{**base.to_dict(), **c})
             for c in attention_candidates(lq, lk, d)}
    name, _ = _best({n: fwd(bs) for n, bs in cands.items()}, (q, k, v), repeats)
    best = cands[name]

    def fwd_bwd(blocks):
        f = lambda q, k, v: jnp.sum(att.attention(q, k, v, causal=causal, block_sizes=blocks,
                                                  implementation="pallas").astype(jnp.float32))
        return jax.jit(jax.grad(f, argnums=(0, 1, 2)))

    cands = {}
    for bq, bk, warps, stages in itertools.product((16, 32, 64), (16, 32, 64), (4, 8), (2, 3)):
        if _fits(bq, lq) and _fits(bk, lk):
            cands[f"{bq},{bk},{warps},{stages}"] = att.BlockSizes(**{
                **best.to_dict(), "block_q_bwd": bq, "block_k_bwd": bk,
                "num_warps_bwd": warps, "num_stages_bwd": stages})
    name, ms = _best({n: fwd_bwd(bs) for n, bs in cands.items()}, (q, k, v), repeats)
    key = att.tuning_key(q.shape, lk, dtype, causal=causal, has_bias=False)
    return key, cands[name], ms


def tune_dynamic_conv(b, t, c, h, k, dtype, *, padding="centered", repeats=10):
    """Times block_t x warps x stages on forward+backward."""
    _require_gpu()
    dtype = jnp.dtype(dtype)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    x = jax.random.normal(keys[0], (b, t, c), dtype)
    w = jax.random.normal(keys[1], (b, t, h, k), dtype)

    def fwd_bwd(blocks):
        f = lambda x, w: jnp.sum(dc.dynamic_conv(x, w, padding=padding, block_sizes=blocks,
                                                 implementation="pallas").astype(jnp.float32))
        return jax.jit(jax.grad(f, argnums=(0, 1)))

    cands = {f"{bt},{wp},{st}": dc.BlockSizes(bt, wp, st)
             for bt, wp, st in itertools.product((16, 32, 64, 128), (2, 4, 8), (1, 2, 3))
             if _fits(bt, t)}
    name, ms = _best({n: fwd_bwd(bs) for n, bs in cands.items()}, (x, w), repeats)
    return dc.tuning_key(x.shape, h, k, dtype, padding=padding), cands[name], ms


def record(op, key, blocks, ms, path=None):
    """Writes one entry into the tuned-blocks table (creating it if needed)."""
    path = path or _common.TUNED_BLOCKS_PATH
    table = {}
    if os.path.exists(path):
        with open(path) as f:
            table = json.load(f)
    table.setdefault(op, {})[key] = {"blocks": blocks.to_dict(), "ms": round(ms, 4),
                                     "jax": jax.__version__,
                                     "date": datetime.date.today().isoformat()}
    with open(path, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("op", choices=["attention", "dynamic_conv"])
    p.add_argument("dims", type=int, nargs=5,
                   help="attention: B Lq Lk H D; dynamic_conv: B T C H K")
    p.add_argument("dtype", choices=["float32", "bfloat16"])
    p.add_argument("--causal", action="store_true", help="attention only")
    p.add_argument("--padding", default="centered", help="dynamic_conv only")
    p.add_argument("--table", default=None, help="default: kernels/tuned_blocks.json")
    args = p.parse_args(argv)
    try:
        if args.op == "attention":
            key, blocks, ms = tune_attention(*args.dims, args.dtype, causal=args.causal)
        else:
            key, blocks, ms = tune_dynamic_conv(*args.dims, args.dtype, padding=args.padding)
    except NeedsGPU as e:
        print(f"kernels.autotune: {e}", file=sys.stderr)
        return 2
    record(args.op, key, blocks, ms, args.table)
    print(f"{key}: {blocks} ({ms:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
