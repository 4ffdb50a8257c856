"""Benchmark of the kernels against XLA baselines:
``python -m mmer_kernels.bench [--out F] [--quick]``.

Attention implementations: "pallas" (our Triton kernel, GPU only), "mosaic" (our Mosaic GPU
kernel, Hopper only, where it takes the dtype and head dim), "xla" and "cudnn"
(``jax.nn.dot_product_attention(implementation=...)``; cuDNN errors are caught and
reported) and "reference" (our jnp reference, the off-GPU dispatch path). Dynamic conv:
"pallas" vs "reference". All implementations of one (shape, dtype, pass) are timed side
by side in the same run (interleaved repeats, median, after warm-up).

FLOPs of masked attention count only the valid work: 4·D·H per (valid query, valid key)
pair (2 matmuls), causal pairs only under causal; fwd+bwd counts 3.5× the forward (the
backward has 5 matmuls to the forward's 2 in FlashAttention-2; ours runs 7, recomputing
s and dP in the dQ kernel, so its real work is 4.5× the forward). Bytes count the minimum
moved over the full tensors: forward reads q, k, v and writes o; fwd+bwd additionally reads
q, k, v, o, dO and writes dQ, dK, dV. Dynamic convolution: forward reads x and the logits
and writes y; the backward reads x, the logits and dy, writes d-logits and dx, and writes
and reads the float32 probabilities once. Every row records ``flops`` and ``bytes`` beside
the time, so GPU figures can be read against a device's limits (``roofline``); the JSON
states its ``timing_method``. In each row, ``vs[name]`` is that implementation's time
divided by this row's time (>1: this row is faster).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mmer_kernels._reference import attention_reference, dynamic_conv_reference
from mmer_kernels._timing import METHOD as TIMING_METHOD
from mmer_kernels._timing import dispatch_floor, time_side_by_side
from mmer_kernels.attention import attention, mosaic_unsupported
from mmer_kernels.dynamic_conv import dynamic_conv

# Emotion-corpus shapes: short, ragged, cross-modal (Lq != Lk); then long sequences.
ATTENTION_SHAPES = [
    dict(b=64, lq=50, lk=50, h=4, d=32, pad=0.6, causal=False),
    dict(b=32, lq=300, lk=300, h=8, d=64, pad=0.4, causal=False),
    dict(b=16, lq=1000, lk=1000, h=8, d=64, pad=0.2, causal=False),
    dict(b=32, lq=500, lk=60, h=8, d=64, pad=0.3, causal=False),  # audio queries text
    dict(b=32, lq=60, lk=500, h=8, d=64, pad=0.3, causal=False),  # text queries audio
    dict(b=16, lq=512, lk=512, h=4, d=128, pad=0.3, causal=True),
    dict(b=2, lq=4096, lk=4096, h=8, d=64, pad=0.0, causal=False, long=True),
    dict(b=1, lq=8192, lk=8192, h=8, d=128, pad=0.0, causal=True, long=True),
    dict(b=1, lq=16384, lk=16384, h=8, d=64, pad=0.0, causal=True, long=True),
]
CONV_SHAPES = [
    dict(b=32, t=300, c=512, h=8, k=7, pad=0.4, padding="centered"),
    dict(b=16, t=1000, c=256, h=4, k=15, pad=0.2, padding="causal"),
    dict(b=64, t=50, c=256, h=8, k=3, pad=0.6, padding="centered"),
]
# ``--set gpu-check``: one shape per regime (an emotion batch, cross-modal, long causal) and one
# convolution, so the one-shot GPU check compiles ~30 programs instead of ~170.
GPU_CHECK_ATTENTION = [ATTENTION_SHAPES[i] for i in (1, 3, 7)]
GPU_CHECK_CONV = CONV_SHAPES[:1]
QUICK_ATTENTION = [dict(b=4, lq=50, lk=37, h=2, d=32, pad=0.3, causal=False)]
QUICK_CONV = [dict(b=4, t=50, c=64, h=4, k=7, pad=0.3, padding="centered")]


def ragged_lengths(batch: int, length: int, pad: float) -> np.ndarray:
    """Deterministic lengths spread evenly so the mean padding is about ``pad`` (max = L).

    Args:
        batch: B.
        length: L, the padded length.
        pad: target mean padded fraction in [0, 1).

    Returns:
        int32 [B], ascending, in [1, L], the last equal to L.

    Raises:
        ValueError: ``batch`` is negative (from ``np.linspace``).
    """
    lo = max(1, round(length * (1 - 2 * pad)))
    return np.linspace(lo, length, batch).round().astype(np.int32)


def attention_work(q_len, kv_len, h, d, causal, itemsize, lq, lk):
    """Work of one masked attention call, for the FLOP/s and GB/s columns.

    Args:
        q_len, kv_len: int arrays [B] of valid query / key lengths.
        h, d: heads and head dim.
        causal: count only causal-visible pairs.
        itemsize: bytes per element of q, k, v.
        lq, lk: padded lengths (the bytes count the full tensors).

    Returns:
        (forward FLOPs on valid pairs, forward bytes, fwd+bwd bytes).

    Raises:
        ValueError: q_len and kv_len differ in length.
    """
    pairs = 0
    for a, c in zip(q_len.tolist(), kv_len.tolist(), strict=True):
        if causal:  # sum over valid queries i of min(i + 1, Lk_b)
            i = np.arange(a)
            pairs += int(np.minimum(i + 1, c).sum())
        else:
            pairs += a * c
    nq, nk = len(q_len) * lq * h * d, len(q_len) * lk * h * d
    return 4 * d * h * pairs, itemsize * (2 * nq + 2 * nk), itemsize * (6 * nq + 6 * nk)


def dynamic_conv_bytes(n_x: int, n_w: int, itemsize: int) -> tuple[int, int]:
    """Minimum bytes of the dynamic convolution: (forward, forward + backward).

    Args:
        n_x: elements of x (= of y, dy, dx).
        n_w: elements of the logits (= of d-logits and of the float32 probabilities).
        itemsize: bytes per element of x and the logits.

    Returns:
        forward: read x and the logits, write y; fwd+bwd adds reading x, the logits and dy
        twice-over as the kernels do (x, logits, dy in the d-logits kernel; dy in the dx
        kernel), writing d-logits and dx, and writing then reading the probabilities.
    """
    fwd = itemsize * (2 * n_x + n_w)
    bwd = itemsize * (4 * n_x + 2 * n_w) + 2 * 4 * n_w
    return fwd, fwd + bwd


def peak_for(dtype: str, peaks: dict) -> float | None:
    """The measured matrix-product peak (TFLOP/s) a row of ``dtype`` is read against: a
    float32 row against the float32 peak (XLA's default precision), bfloat16 against bfloat16;
    None when ``peaks`` (benchmarks/gpu_check.py's ``peaks``) has none for it."""
    return peaks.get(f"{dtype}_matmul_tflops")


def roofline(row: dict, peak_tflops: float, peak_gbps: float) -> dict:
    """Where a benchmark row stands against a device's measured limits.

    Args:
        row: a row of the benchmark JSON (``flops``, ``bytes``, ``ms``).
        peak_tflops: measured (or nominal) matmul peak for the row's dtype, TFLOP/s.
        peak_gbps: measured (or nominal) memory bandwidth, GB/s.

    Returns:
        dict: ``intensity`` (FLOP/byte), ``bound`` ("compute" or "memory", from the ridge
        point), ``floor_ms`` (the time at the limit), ``frac_of_limit`` (floor / measured;
        None without a time).

    Raises:
        KeyError: the row lacks ``flops`` or ``bytes``.
    """
    flops, nbytes = row["flops"], row["bytes"]
    t_compute = flops / (peak_tflops * 1e9)  # ms
    t_memory = nbytes / (peak_gbps * 1e6)
    floor = max(t_compute, t_memory)
    ms = row.get("ms")
    return {"intensity": round(flops / max(nbytes, 1), 2),
            "bound": "compute" if t_compute >= t_memory else "memory",
            "floor_ms": round(floor, 5),
            "frac_of_limit": round(floor / ms, 3) if ms else None}


def _attention_impls(on_gpu, causal, kw, dtype=None, d=None):
    ql, kl = kw["q_lengths"], kw["kv_lengths"]
    impls = {"reference": lambda q, k, v: attention_reference(q, k, v, causal=causal, **kw)}
    for name in ("xla",) + (("cudnn",) if on_gpu else ()):
        impls[name] = (lambda n: lambda q, k, v: jax.nn.dot_product_attention(
            q, k, v, is_causal=causal, query_seq_lengths=ql, key_value_seq_lengths=kl,
            implementation=n))(name)
    if on_gpu:
        impls["pallas"] = lambda q, k, v: attention(q, k, v, causal=causal,
                                                    implementation="pallas", **kw)
    # The Mosaic GPU kernels where they run (Hopper; bf16/f16, D in 32/64/128).
    if on_gpu and dtype is not None and mosaic_unsupported(dtype, d, has_bias=False,
                                                           has_masks=False) is None:
        impls["mosaic"] = lambda q, k, v: attention(q, k, v, causal=causal,
                                                    implementation="mosaic", **kw)
    return impls


def _grad_of(fn, argnums):
    return jax.grad(lambda *a: jnp.sum(fn(*a).astype(jnp.float32)), argnums=argnums)


def _rows(op, shape, dtype, pass_, times, flops, nbytes):
    """One row per implementation with TFLOP/s, GB/s and the time ratios to the others."""
    rows = []
    for impl, ms in times.items():
        row = {"op": op, "shape": shape, "dtype": dtype, "pass": pass_, "impl": impl}
        if isinstance(ms, str):
            rows.append({**row, "ms": None, "tflops": None, "gbps": None, "vs": {}, "error": ms,
                         "flops": int(flops), "bytes": int(nbytes)})
            continue
        vs = {o: round(t / ms, 3) for o, t in times.items() if o != impl and isinstance(t, float)}
        rows.append({**row, "ms": round(ms, 4), "tflops": round(flops / ms / 1e9, 3),
                     "gbps": round(nbytes / ms / 1e6, 2), "vs": vs, "flops": int(flops),
                     "bytes": int(nbytes)})
    return rows


def bench_attention(shapes, dtypes, on_gpu, repeats, on_rows=None):
    """Times the attention implementations on each shape and dtype, forward and fwd+bwd.

    Args:
        shapes: dicts like ``ATTENTION_SHAPES`` (b, lq, lk, h, d, pad, causal).
        dtypes: jnp dtypes.
        on_gpu: add the "pallas" and "cudnn" implementations.
        repeats: timed calls per implementation.
        on_rows: called with the rows so far after each (shape, dtype, pass).

    Returns:
        Rows (dicts) of op, shape, dtype, pass, impl, ms, tflops, gbps and vs; an
        implementation that failed has ``ms`` None and an ``error`` string.

    Raises:
        KeyError: a shape dict lacks a field.
    """
    rows = []
    for sh in shapes:
        ql = ragged_lengths(sh["b"], sh["lq"], sh["pad"])
        kl = ragged_lengths(sh["b"], sh["lk"], sh["pad"])
        kw = dict(q_lengths=jnp.asarray(ql), kv_lengths=jnp.asarray(kl))
        shape = dict(B=sh["b"], Lq=sh["lq"], Lk=sh["lk"], H=sh["h"], D=sh["d"],
                     causal=sh["causal"], pad_q=round(1 - ql.mean() / sh["lq"], 3),
                     pad_kv=round(1 - kl.mean() / sh["lk"], 3))
        for dtype in dtypes:
            keys = jax.random.split(jax.random.PRNGKey(0), 3)
            q = jax.random.normal(keys[0], (sh["b"], sh["lq"], sh["h"], sh["d"]), dtype)
            k = jax.random.normal(keys[1], (sh["b"], sh["lk"], sh["h"], sh["d"]), dtype)
            v = jax.random.normal(keys[2], k.shape, dtype)
            flops, fwd_bytes, all_bytes = attention_work(
                ql, kl, sh["h"], sh["d"], sh["causal"], jnp.dtype(dtype).itemsize,
                sh["lq"], sh["lk"])
            impls = _attention_impls(on_gpu, sh["causal"], kw, dtype, sh["d"])
            for pass_, wrap, fl, nb in (("fwd", lambda f: f, flops, fwd_bytes),
                                        ("fwd+bwd", lambda f: _grad_of(f, (0, 1, 2)),
                                         3.5 * flops, all_bytes)):
                times = time_side_by_side({n: jax.jit(wrap(f)) for n, f in impls.items()},
                                          (q, k, v), repeats=repeats)
                rows += _rows("attention", shape, jnp.dtype(dtype).name, pass_, times, fl, nb)
                if on_rows:
                    on_rows(rows)
    return rows


def bench_dynamic_conv(shapes, dtypes, on_gpu, repeats, on_rows=None):
    """Times the dynamic convolution ("reference", and "pallas" on GPU), fwd and fwd+bwd.

    Args:
        shapes: dicts like ``CONV_SHAPES`` (b, t, c, h, k, pad, padding).
        dtypes: jnp dtypes.
        on_gpu: add the "pallas" implementation.
        repeats: timed calls per implementation.
        on_rows: called with the rows so far after each (shape, dtype, pass).

    Returns:
        Rows as in :func:`bench_attention`.

    Raises:
        KeyError: a shape dict lacks a field.
    """
    rows = []
    for sh in shapes:
        lengths = jnp.asarray(ragged_lengths(sh["b"], sh["t"], sh["pad"]))
        shape = dict(B=sh["b"], T=sh["t"], C=sh["c"], H=sh["h"], K=sh["k"],
                     padding=sh["padding"], pad=round(1 - float(lengths.mean()) / sh["t"], 3))
        impls = {"reference": functools.partial(dynamic_conv_reference, lengths=lengths,
                                                padding=sh["padding"])}
        if on_gpu:
            impls["pallas"] = functools.partial(dynamic_conv, lengths=lengths,
                                                padding=sh["padding"], implementation="pallas")
        for dtype in dtypes:
            keys = jax.random.split(jax.random.PRNGKey(0), 2)
            x = jax.random.normal(keys[0], (sh["b"], sh["t"], sh["c"]), dtype)
            w = jax.random.normal(keys[1], (sh["b"], sh["t"], sh["h"], sh["k"]), dtype)
            s = jnp.dtype(dtype).itemsize
            n_x, n_w = x.size, w.size
            flops = 2 * int(lengths.sum()) * sh["c"] * sh["k"]  # valid positions only
            fwd_b, all_b = dynamic_conv_bytes(n_x, n_w, s)
            for pass_, wrap, fl, nb in (("fwd", lambda f: f, flops, fwd_b),
                                        ("fwd+bwd", lambda f: _grad_of(f, (0, 1)), 3 * flops,
                                         all_b)):
                times = time_side_by_side({n: jax.jit(wrap(f)) for n, f in impls.items()},
                                          (x, w), repeats=repeats)
                rows += _rows("dynamic_conv", shape, jnp.dtype(dtype).name, pass_, times, fl, nb)
                if on_rows:
                    on_rows(rows)
    return rows


def _print_table(rows):
    print(f"{'op':<13}{'shape':<46}{'dtype':<10}{'pass':<9}{'impl':<11}{'ms':>10}"
          f"{'TFLOP/s':>9}{'GB/s':>9}  vs")
    for r in rows:
        shape = ",".join(f"{k}={v}" for k, v in r["shape"].items() if not k.startswith("pad"))
        if r["ms"] is None:
            print(f"{r['op']:<13}{shape:<46}{r['dtype']:<10}{r['pass']:<9}{r['impl']:<11}"
                  f"  {r['error'][:60]}")
            continue
        vs = " ".join(f"{k}:{v:.2f}x" for k, v in r["vs"].items())
        print(f"{r['op']:<13}{shape:<46}{r['dtype']:<10}{r['pass']:<9}{r['impl']:<11}"
              f"{r['ms']:>10.3f}{r['tflops']:>9.3f}{r['gbps']:>9.1f}  {vs}")


def _annotate(rows: list[dict], floor_ms: float, peaks: dict | None) -> list[dict]:
    """Each timed row flagged when within 2x the dispatch floor (its time is then mostly the
    host's) and, with measured ``peaks``, read against its own dtype's peak and the copy
    bandwidth (:func:`roofline`)."""
    out = []
    for r in rows:
        r = dict(r)
        if r.get("ms"):
            r["near_dispatch_floor"] = r["ms"] < 2 * floor_ms
            peak = peak_for(r["dtype"], peaks or {})
            if peak and (peaks or {}).get("copy_gbps"):
                r["roofline"] = {**roofline(r, peak, peaks["copy_gbps"]),
                                 "peak_tflops": peak, "peak_dtype": r["dtype"]}
        out.append(r)
    return out


def main(argv=None) -> int:
    """``python -m mmer_kernels.bench``: prints the table and writes the JSON file (rewritten
    after every timed shape, so an interrupted run keeps what it measured).

    Returns:
        0.

    Raises:
        SystemExit: bad arguments (from argparse).
        OSError: the output file cannot be written.
    """
    p = argparse.ArgumentParser(description="Kernel benchmark (see module docstring).")
    p.add_argument("--out", default=None,
                   help="JSON path; default benchmarks/results/kernels-<device>-<date>.json")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: one small shape per op, float32 only, 3 repeats")
    p.add_argument("--set", dest="shape_set", choices=("all", "gpu-check"), default="all",
                   help="gpu-check: one shape per regime (the one-shot GPU check)")
    p.add_argument("--peaks", default=None,
                   help="a JSON file with measured peaks (gpu_check's summary, key 'peaks'): "
                        "each row is read against its own dtype's peak")
    p.add_argument("--ops", default="attention,dynamic_conv")
    p.add_argument("--dtypes", default=None, help="default float32,bfloat16 (quick: float32)")
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args(argv)
    ops = args.ops.split(",")
    dtypes = args.dtypes or ("float32" if args.quick else "float32,bfloat16")
    dtypes = [jnp.dtype(d) for d in dtypes.split(",")]
    on_gpu = jax.default_backend() == "gpu"
    repeats = args.repeats or (3 if args.quick else 20)
    att_shapes, conv_shapes = {"all": (ATTENTION_SHAPES, CONV_SHAPES),
                               "gpu-check": (GPU_CHECK_ATTENTION, GPU_CHECK_CONV)}[args.shape_set]
    if args.quick:
        att_shapes, conv_shapes = QUICK_ATTENTION, QUICK_CONV
    if not on_gpu:
        print(f"backend is {jax.default_backend()!r}: the Pallas kernels need a GPU, so only the "
              "XLA paths are timed" + ("" if args.quick else "; long sequences are skipped"))
        att_shapes = [s for s in att_shapes if not s.get("long")]
    peaks = None
    if args.peaks:
        with open(args.peaks) as f:
            peaks = json.load(f).get("peaks")
    print("attention FLOPs count only valid (unpadded, causal-visible) query-key pairs")
    device = jax.devices()[0].device_kind
    date = datetime.date.today().isoformat()
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")
    out = args.out or os.path.join("benchmarks", "results", f"kernels-{slug}-{date}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    floor = dispatch_floor()
    print(f"dispatch floor: {floor * 1e3:.1f} us per call")
    done: list[dict] = []

    def write(rows):
        with open(out + ".tmp", "w") as f:
            json.dump({"what": "attention" if ops == ["attention"] else "kernels",
                       "device": device, "jax": jax.__version__, "date": date,
                       "flops_note": "attention FLOPs count valid (unpadded) pairs only",
                       "timing_method": TIMING_METHOD, "dispatch_floor_ms": round(floor, 5),
                       "peaks": peaks, "shape_set": "quick" if args.quick else args.shape_set,
                       "rows": _annotate(done + rows, floor, peaks)}, f, indent=1)
            f.write("\n")
        os.replace(out + ".tmp", out)

    if "attention" in ops:
        done += bench_attention(att_shapes, dtypes, on_gpu, repeats, on_rows=write)
    if "dynamic_conv" in ops:
        done += bench_dynamic_conv(conv_shapes, dtypes, on_gpu, repeats, on_rows=write)
    write([])
    _print_table(done)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
