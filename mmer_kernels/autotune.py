"""Small autotuner: times candidate block sizes and records the best in tuned_blocks.json.

Usage (GPU only): ``python -m mmer_kernels.autotune attention 32 300 300 8 64 bfloat16``
or ``python -m mmer_kernels.autotune dynamic_conv 32 300 512 8 7 bfloat16``.
The dispatch reads the table by shape bucket (device kind, lengths and batch rounded up to a
power of two, exact H/D/C/K, dtype and flags), so one tuned entry serves a bucket.

Candidates are timed on inputs padded as they come: ragged lengths whose mean padded fraction is
``--pad`` (0.4 by default, the emotion corpora's; :func:`mmer_kernels.bench.ragged_lengths`),
passed to the kernels as ``q_lengths`` / ``kv_lengths`` / ``lengths``, so tiles that the kernels
skip over padding are timed as they run. ``--max-candidates`` cuts each stage's candidate list to
an evenly spread subset (the defaults always kept); all candidates of a stage compile in parallel
(:func:`mmer_kernels._timing.compile_all`). ``--dry-run`` runs anywhere: it times only the XLA
implementation on the same padded inputs and records nothing.
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
import numpy as np

from mmer_kernels import _common
from mmer_kernels._timing import time_side_by_side
from mmer_kernels.attention import BlockSizes as AttentionBlockSizes
from mmer_kernels.attention import attention, cudnn_unsupported, mosaic_unsupported
from mmer_kernels.attention import tuning_key as attention_key
from mmer_kernels.dynamic_conv import BlockSizes as DynamicConvBlockSizes
from mmer_kernels.dynamic_conv import dynamic_conv
from mmer_kernels.dynamic_conv import tuning_key as dynamic_conv_key

# The ops of the table and the BlockSizes class of each.
BLOCK_SIZES = {"attention": AttentionBlockSizes, "dynamic_conv": DynamicConvBlockSizes}


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
    """Forward-stage candidates: tiles no larger than the (rounded-up) sequence.

    Args:
        lq, lk: query and key lengths.
        d: head dim; D >= 128 excludes tiles above 64 x 128 (shared memory).

    Yields:
        dicts of block_q, block_k, num_warps, num_stages (AttentionBlockSizes fields).
    """
    for bq, bk, warps, stages in itertools.product((32, 64, 128), (32, 64, 128), (4, 8), (2, 3)):
        if _fits(bq, lq) and _fits(bk, lk) and not (d >= 128 and bq * bk > 64 * 128):
            yield dict(block_q=bq, block_k=bk, num_warps=warps, num_stages=stages)


def ragged_lengths(batch: int, length: int, pad: float) -> np.ndarray:
    """int32 [batch] lengths in [1, length], mean padded fraction about ``pad`` (the last is
    ``length``); the benchmark's rule (:func:`mmer_kernels.bench.ragged_lengths`)."""
    lo = max(1, round(length * (1 - 2 * pad)))
    return np.linspace(lo, length, batch).round().astype(np.int32)


def cut(cands: dict, n: int | None, keep=()) -> dict:
    """At most ``n`` of ``cands`` (name -> value), evenly spread over their order, the names in
    ``keep`` always among them; all of them when ``n`` is None or not smaller."""
    if n is None or len(cands) <= n:
        return cands
    names = list(cands)
    picked = {names[int(i)] for i in np.linspace(0, len(names) - 1, n).round()}
    picked |= {k for k in keep if k in cands}
    return {k: v for k, v in cands.items() if k in picked}


def _best(fns, args, repeats):
    times = time_side_by_side(fns, args, repeats=repeats)
    ok = {k: v for k, v in times.items() if isinstance(v, float)}
    if not ok:
        raise RuntimeError(f"every candidate failed: {times}")
    name = min(ok, key=ok.get)
    return name, ok[name]


def _grad_of(fn, n):
    """jit(grad(sum(fn))) over its first n arguments: the fwd+bwd time of an implementation."""
    return jax.jit(jax.grad(lambda *a: jnp.sum(fn(*a).astype(jnp.float32)),
                            argnums=tuple(range(n))))


def _times(fns, args, repeats):
    """fwd+bwd milliseconds of each implementation (a failed one is left out)."""
    times = time_side_by_side(fns, args, repeats=repeats)
    return {k: round(v, 4) for k, v in times.items() if isinstance(v, float)}


def tune_attention(b, lq, lk, h, d, dtype, *, causal=False, repeats=10, pad=0.0,
                   max_candidates=None, dry_run=False):
    """Two stages: forward tiles by forward time, then backward tiles by fwd+bwd time.

    Args:
        b, lq, lk, h, d: q is [b, lq, h, d], k and v are [b, lk, h, d] (random normal).
        dtype: "float32" or "bfloat16" (anything ``jnp.dtype`` takes).
        causal: tune the causal variant.
        repeats: timed calls per candidate.
        pad: mean padded fraction of the ragged q and kv lengths the calls carry.
        max_candidates: cut each stage's candidates to this many (:func:`cut`).
        dry_run: no GPU needed: only the XLA implementation is timed, on the same inputs.

    Returns:
        (tuning key, best AttentionBlockSizes, its fwd+bwd milliseconds, fwd+bwd milliseconds
        of each implementation: {"pallas", "xla", and "cudnn" where it applies}); in a dry run
        (key, None, None, {"xla": ms}).

    Raises:
        NeedsGPU: the default backend is not a GPU.
        RuntimeError: every candidate failed to compile or run.
    """
    if not dry_run:
        _require_gpu()
    dtype = jnp.dtype(dtype)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    q = jax.random.normal(keys[0], (b, lq, h, d), dtype)
    k = jax.random.normal(keys[1], (b, lk, h, d), dtype)
    v = jax.random.normal(keys[2], (b, lk, h, d), dtype)
    lens = dict(q_lengths=jnp.asarray(ragged_lengths(b, lq, pad)),
                kv_lengths=jnp.asarray(ragged_lengths(b, lk, pad)))
    base = AttentionBlockSizes.default(lq, lk, d, dtype)
    key = attention_key(q.shape, lk, dtype, causal=causal, has_bias=False)
    xla = _grad_of(lambda q, k, v: attention(q, k, v, causal=causal, implementation="xla",
                                             **lens), 3)
    if dry_run:
        return key, None, None, _times({"xla": xla}, (q, k, v), repeats)

    def fwd(blocks):
        return jax.jit(lambda q, k, v: attention(q, k, v, causal=causal, block_sizes=blocks,
                                                 implementation="pallas", **lens))

    cands = {json.dumps(c): AttentionBlockSizes(**{**base.to_dict(), **c})
             for c in attention_candidates(lq, lk, d)}
    default = json.dumps({f: base.to_dict()[f] for f in ("block_q", "block_k", "num_warps",
                                                          "num_stages")})
    cands = cut(cands, max_candidates, keep=(default,))
    name, _ = _best({n: fwd(bs) for n, bs in cands.items()}, (q, k, v), repeats)
    best = cands[name]

    def fwd_bwd(blocks):
        f = lambda q, k, v: jnp.sum(attention(q, k, v, causal=causal, block_sizes=blocks,
                                              implementation="pallas", **lens
                                              ).astype(jnp.float32))
        return jax.jit(jax.grad(f, argnums=(0, 1, 2)))

    # Backward: one fused kernel (dK, dV and the dQ copies), read from the ``*_dkv`` fields; the
    # ``*_dq`` fields are kept only so older tables load, so they are not tuned. Timed on
    # fwd+bwd; 32..128-row tiles (wgmma wants >= 64 rows).
    pairs = [(bq, bk) for bq, bk in itertools.product((32, 64, 128), (32, 64, 128))
             if _fits(bq, lq) and _fits(bk, lk) and not (d >= 128 and bq * bk > 64 * 128)]
    for stage in ("dkv",):
        cands = {f"{stage}{bq}x{bk},w{warps}": AttentionBlockSizes(**{
            **best.to_dict(), f"block_q_{stage}": bq, f"block_k_{stage}": bk,
            f"num_warps_{stage}": warps}) for (bq, bk), warps in itertools.product(pairs, (4, 8))}
        cands = cut(cands, max_candidates)
        name, ms = _best({n: fwd_bwd(bs) for n, bs in cands.items()}, (q, k, v), repeats)
        best = cands[name]
    # Which implementation "auto" should run on this bucket: the tuned kernel, cuDNN, XLA.
    impls = {"pallas": fwd_bwd(best), "xla": xla}
    if cudnn_unsupported(dtype, d, lq, lk, causal=causal, has_bias=False,
                         has_masks=False) is None:
        impls["cudnn"] = _grad_of(
            lambda q, k, v: attention(q, k, v, causal=causal, implementation="cudnn", **lens), 3)
    if mosaic_unsupported(dtype, d, has_bias=False, has_masks=False) is None:
        impls["mosaic"] = _grad_of(
            lambda q, k, v: attention(q, k, v, causal=causal, implementation="mosaic", **lens), 3)
    times = _times(impls, (q, k, v), repeats)
    return key, best, ms, times


def tune_dynamic_conv(b, t, c, h, k, dtype, *, padding="centered", repeats=10, pad=0.0,
                      max_candidates=None, dry_run=False):
    """Times block_t x warps x stages on forward+backward.

    Args:
        b, t, c, h, k: x is [b, t, c], the logits [b, t, h, k] (random normal).
        dtype: "float32" or "bfloat16".
        padding: "centered" or "causal".
        repeats: timed calls per candidate.
        pad: mean padded fraction of the ragged lengths the calls carry.
        max_candidates: cut the candidates to this many (:func:`cut`).
        dry_run: no GPU needed: only the XLA implementation is timed, on the same inputs.

    Returns:
        (tuning key, best DynamicConvBlockSizes, its fwd+bwd milliseconds, fwd+bwd milliseconds
        of {"pallas", "xla"}); in a dry run (key, None, None, {"xla": ms}).

    Raises:
        NeedsGPU: the default backend is not a GPU.
        RuntimeError: every candidate failed to compile or run.
    """
    if not dry_run:
        _require_gpu()
    dtype = jnp.dtype(dtype)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    x = jax.random.normal(keys[0], (b, t, c), dtype)
    w = jax.random.normal(keys[1], (b, t, h, k), dtype)
    lengths = jnp.asarray(ragged_lengths(b, t, pad))
    key = dynamic_conv_key(x.shape, h, k, dtype, padding=padding)
    xla = _grad_of(lambda x, w: dynamic_conv(x, w, lengths=lengths, padding=padding,
                                             implementation="xla"), 2)
    if dry_run:
        return key, None, None, _times({"xla": xla}, (x, w), repeats)

    def fwd_bwd(blocks):
        f = lambda x, w: jnp.sum(dynamic_conv(x, w, lengths=lengths, padding=padding,
                                              block_sizes=blocks,
                                              implementation="pallas").astype(jnp.float32))
        return jax.jit(jax.grad(f, argnums=(0, 1)))

    cands = {f"{bt},{wp},{st}": DynamicConvBlockSizes(bt, wp, st)
             for bt, wp, st in itertools.product((16, 32, 64, 128), (2, 4, 8), (1, 2, 3))
             if _fits(bt, t)}
    base = DynamicConvBlockSizes.default(t, c // h)
    cands = cut(cands, max_candidates,
                keep=(f"{base.block_t},{base.num_warps},{base.num_stages}",))
    name, ms = _best({n: fwd_bwd(bs) for n, bs in cands.items()}, (x, w), repeats)
    times = _times({"pallas": fwd_bwd(cands[name]), "xla": xla}, (x, w), repeats)
    return key, cands[name], ms, times


def check_table(table: dict) -> int:
    """Checks a parsed tuned-blocks table: every entry builds its op's BlockSizes.

    Args:
        table: {op: {tuning key: {"blocks": {field: int}, "ms": float, ...}}}.

    Returns:
        The number of entries.

    Raises:
        ValueError: an unknown op, an entry without a "blocks" dict, an unknown
            "implementation", or blocks that its
            BlockSizes refuses (unknown fields, tiles that are not powers of two >= 16);
            the message names the op and the key.
    """
    if not isinstance(table, dict) or set(table) - set(BLOCK_SIZES):
        raise ValueError(f"a tuned-blocks table maps ops {sorted(BLOCK_SIZES)} to entries; got "
                         f"{sorted(table) if isinstance(table, dict) else type(table).__name__}")
    n = 0
    for op, entries in table.items():
        for key, entry in entries.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("blocks"), dict):
                raise ValueError(f"{op}[{key!r}]: an entry needs a 'blocks' dict, got {entry!r}")
            impl = entry.get("implementation")
            if impl is not None and impl not in _common.TABLE_IMPLEMENTATIONS:
                raise ValueError(f"{op}[{key!r}]: implementation={impl!r} must be one of "
                                 f"{_common.TABLE_IMPLEMENTATIONS}")
            try:
                BLOCK_SIZES[op](**entry["blocks"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{op}[{key!r}]: {exc}") from exc
            n += 1
    return n


def record(op, key, blocks, ms, path=None, times=None):
    """Writes one entry into the tuned-blocks table (creating it if needed).

    Args:
        op: "attention" or "dynamic_conv".
        key: the op's tuning key (a shape bucket).
        blocks: the op's BlockSizes.
        ms: its measured milliseconds.
        path: the table (default: mmer_kernels/tuned_blocks.json).
        times: fwd+bwd milliseconds per implementation ("pallas", "cudnn", "xla"); recorded as
            ``times_ms`` with the fastest as ``implementation``, which ``implementation="auto"``
            runs on this bucket (:func:`mmer_kernels._common.pick_implementation`).

    Raises:
        OSError: the table cannot be read or written.
        ValueError: the existing table is not valid JSON.
    """
    path = path or _common.TUNED_BLOCKS_PATH
    table = {}
    if os.path.exists(path):
        with open(path) as f:
            table = json.load(f)
    entry = {"blocks": blocks.to_dict(), "ms": round(ms, 4), "jax": jax.__version__,
             "date": datetime.date.today().isoformat()}
    if times:
        entry["times_ms"] = {k: round(float(v), 4) for k, v in times.items()}
        entry["implementation"] = min(times, key=times.get)
    table.setdefault(op, {})[key] = entry
    with open(path, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")


def main(argv=None) -> int:
    """``python -m mmer_kernels.autotune``: tunes one shape and records it.

    Returns:
        0 when tuned and recorded, 2 without a GPU (the table is left unchanged).

    Raises:
        SystemExit: bad arguments (from argparse).
        RuntimeError: every candidate failed.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("op", choices=["attention", "dynamic_conv"])
    p.add_argument("dims", type=int, nargs=5,
                   help="attention: B Lq Lk H D; dynamic_conv: B T C H K")
    p.add_argument("dtype", choices=["float32", "bfloat16"])
    p.add_argument("--causal", action="store_true", help="attention only")
    p.add_argument("--padding", default="centered", help="dynamic_conv only")
    p.add_argument("--table", default=None, help="default: mmer_kernels/tuned_blocks.json")
    p.add_argument("--pad", type=float, default=0.4,
                   help="mean padded fraction of the inputs' ragged lengths (0: unpadded)")
    p.add_argument("--max-candidates", type=int, default=None,
                   help="per stage, an evenly spread subset of this many (default: all)")
    p.add_argument("--dry-run", action="store_true",
                   help="no GPU: time the XLA implementation on the same inputs, record nothing")
    args = p.parse_args(argv)
    if not 0 <= args.pad < 1:
        p.error(f"--pad {args.pad}: must be in [0, 1)")
    kw = dict(pad=args.pad, max_candidates=args.max_candidates, dry_run=args.dry_run)
    try:
        if args.op == "attention":
            key, blocks, ms, times = tune_attention(*args.dims, args.dtype, causal=args.causal,
                                                    **kw)
        else:
            key, blocks, ms, times = tune_dynamic_conv(*args.dims, args.dtype,
                                                       padding=args.padding, **kw)
    except NeedsGPU as e:
        print(f"mmer_kernels.autotune: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"{key}: dry run, nothing recorded; fwd+bwd ms on inputs padded {args.pad:.0%}: "
              f"{times}")
        return 0
    record(args.op, key, blocks, ms, args.table, times=times)
    print(f"{key}: {blocks} ({ms:.3f} ms); fwd+bwd ms per implementation: {times}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
