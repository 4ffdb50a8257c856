"""Evidence for one JAX-side speed-up: the LSTM input projection hoisted out of the time scan.

How to run::

    python benchmarks/lstm_hoist.py                     # S002's word LSTM layer shapes
    python benchmarks/lstm_hoist.py --rows 64 --length 8 --rounds 3 --out /tmp/h.json  # smoke

Times forward + backward (jitted, float32) of one unidirectional LSTM layer over [N, L, D] with
a length mask, three ways, in interleaved rounds:

- ``mmer_jax``: :class:`mmer_jax.models.layers.LSTM` (Flax ``nn.RNN`` over
  ``OptimizedLSTMCell``: the input projection x_t @ W_i runs inside the scan, L small matmuls);
- ``scan_inner``: a plain ``lax.scan`` with the same per-step input projection (checks that the
  hand-written scan alone changes nothing);
- ``scan_hoisted``: the same recurrence with x @ W_i done once for all steps before the scan
  (one [N*L, D] x [D, 4H] matmul), the scan carrying only h @ W_h.

Prints a table and writes JSON (``benchmarks/results/lstm-hoist-cpu-<date>.json`` by default).
The two scans compute the same outputs (checked before timing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def lstm_scan(wi, wh, b, x, mask, hoist: bool):
    """One LSTM layer: x [N, L, D], mask [N, L] -> outputs [N, L, H] (zeros on padding).

    wi [D, 4H], wh [H, 4H], b [4H]; gates in the order i, f, g, o. Padded steps keep the
    previous state. ``hoist`` computes x @ wi before the scan instead of inside it.
    """
    n, _, _ = x.shape
    h4 = wh.shape[1]
    hdim = h4 // 4
    xs = jnp.swapaxes(x @ wi if hoist else x, 0, 1)  # [L, N, 4H] or [L, N, D]
    ms = jnp.swapaxes(mask, 0, 1)[..., None]  # [L, N, 1]

    def cell(carry, inp):
        h, c = carry
        xt, mt = inp
        z = (xt if hoist else xt @ wi) + h @ wh + b
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c2 = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h2 = jax.nn.sigmoid(o) * jnp.tanh(c2)
        h2, c2 = jnp.where(mt, h2, h), jnp.where(mt, c2, c)
        return (h2, c2), jnp.where(mt, h2, 0.0)

    zeros = jnp.zeros((n, hdim), x.dtype)
    _, out = jax.lax.scan(cell, (zeros, zeros), (xs, ms))
    return jnp.swapaxes(out, 0, 1)


def main(argv=None) -> int:
    """Runs the comparison, prints the table and writes the JSON; returns 0.

    Raises:
      AssertionError: the hoisted and per-step scans disagree.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=448, help="N: utterances (packed real ones)")
    p.add_argument("--length", type=int, default=24, help="L: words per utterance (padded)")
    p.add_argument("--dim", type=int, default=300, help="D: input features")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--reps", type=int, default=3, help="calls per round and variant")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from mmer_jax.models.layers import LSTM

    n, length, d, hd = args.rows, args.length, args.dim, args.hidden
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, length, d)), jnp.float32)
    lens = rng.integers(1, length + 1, n)
    mask = jnp.asarray(np.arange(length)[None, :] < lens[:, None])
    k = 1.0 / hd**0.5
    wi, wh = (jnp.asarray(rng.uniform(-k, k, s), jnp.float32) for s in ((d, 4 * hd), (hd, 4 * hd)))
    b = jnp.zeros((4 * hd,), jnp.float32)
    flax_lstm = LSTM(hd)
    fparams = flax_lstm.init(jax.random.PRNGKey(0), x, mask)

    def grad_of(loss):
        return jax.jit(jax.grad(loss))

    fns = {
        "mmer_jax": (grad_of(lambda prm: jnp.sum(flax_lstm.apply(prm, x, mask) ** 2)), fparams),
        "scan_inner": (grad_of(lambda w: jnp.sum(lstm_scan(*w, x, mask, False) ** 2)),
                       (wi, wh, b)),
        "scan_hoisted": (grad_of(lambda w: jnp.sum(lstm_scan(*w, x, mask, True) ** 2)),
                         (wi, wh, b)),
    }
    a = lstm_scan(wi, wh, b, x, mask, False)
    h = lstm_scan(wi, wh, b, x, mask, True)
    np.testing.assert_allclose(np.asarray(a), np.asarray(h), atol=1e-4)
    for f, w in fns.values():  # compile
        jax.block_until_ready(f(w))
    times: dict[str, list[float]] = {name: [] for name in fns}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for name, (f, w) in fns.items():
            t0 = time.perf_counter()
            for _ in range(args.reps):
                out = f(w)
            jax.block_until_ready(out)
            times[name].append((time.perf_counter() - t0) / args.reps * 1e3)
    med = {name: statistics.median(v) for name, v in times.items()}
    rows = [{"variant": name, "ms_median": med[name], "ms_rounds": times[name],
             "speedup_vs_mmer_jax": med["mmer_jax"] / med[name]} for name in fns]
    date = datetime.date.today().isoformat()
    record = {"what": "lstm-hoist", "device": jax.devices()[0].platform, "jax": jax.__version__,
              "date": date, "shape": {"N": n, "L": length, "D": d, "H": hd},
              "pass": "fwd+bwd", "dtype": "float32", "rounds": args.rounds, "reps": args.reps,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpu_count": os.cpu_count(), "rows": rows}
    out = args.out or os.path.join(REPO, "benchmarks", "results",
                                   f"lstm-hoist-{record['device']}-{date}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as fh:
        json.dump(record, fh, indent=1)
        fh.write("\n")
    print(f"LSTM layer fwd+bwd, N={n} L={length} D={d} H={hd}, median of {args.rounds} rounds")
    for r in rows:
        print(f"  {r['variant']:<14}{r['ms_median']:9.1f} ms  {r['speedup_vs_mmer_jax']:.2f}x")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
