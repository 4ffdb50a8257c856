"""How much the quickstart's figures move: over seeds, and over the CPU's vector extensions.

The quickstart's test figures are bit-identical from run to run on one machine, but they are not
the same on another: XLA's CPU code uses the widest vector instructions the CPU has, and a wider
vector sums reductions in another order, so the last bits of every step, and after hundreds of
steps the selected epoch and the test figures, depend on the CPU. ``--xla_cpu_max_isa`` caps the
instructions XLA uses, which lets one machine show what another would get.

    python -m mmer_jax.reproduce.quickstart_spread runs/qs/seed0 runs/qs/seed1 ... \\
        --out reproductions/quickstart/spread/spread.json

collects the runs' ``results.json`` (seed from the config, CPU and cap from ``environment``) into
one file, from which the README's ``quickstart_spread`` table is generated (:func:`spread_block`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

VARIANTS = ("audio", "video", "text", "fused")
# The test scores kept per variant (their names and formats: mmer_jax.metric_table).
METRICS = ("accuracy", "weighted_f1", "uar")
# The cap's value when none was set: the host's widest level.
HOST = "host"


def collect(workdirs: list[str]) -> dict:
    """One entry per run: seed, CPU, cap and each variant's test metrics (fractions)."""
    runs = []
    for wd in workdirs:
        path = os.path.join(wd, "results.json")
        with open(path) as f:
            r = json.load(f)
        with open(os.path.join(wd, "config.json")) as f:
            cfg = json.load(f)
        env = r["environment"]
        if "cpu_flags" not in env:
            raise SystemExit(f"{path}: no cpu_flags in environment (a run from before they "
                             "were recorded); rerun it")
        runs.append({
            "workdir": os.path.basename(os.path.normpath(wd)),
            "seed": cfg.get("seed", 0),
            "xla_cpu_max_isa": env.get("xla_cpu_max_isa") or HOST,
            "cpu": env["cpu"], "cpu_flags": env["cpu_flags"], "jax": env["jax"],
            "wall_s": r["timing"]["wall_s"],
            "variants": {name: {m: v["test"][m] for m in METRICS}
                         for name, v in r["variants"].items()},
        })
    return {"config": "experiments/quickstart.py", "runs": runs}


def _mean_std(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * statistics.mean(xs):.1f} ± {100 * sd:.1f}"


def spread_block(path: str) -> list[str]:
    """README lines: test accuracy per variant over seeds (host's vector extensions), then seed
    0 under each cap, with the largest move between caps."""
    if not os.path.exists(path):
        return [f"_No committed quickstart spread yet ({path})._"]
    with open(path) as f:
        rep = json.load(f)
    runs = rep["runs"]
    host = [r for r in runs if r["xla_cpu_max_isa"] == HOST]
    seeds = sorted(r["seed"] for r in host)
    first = host[0]
    lines = [f"Test accuracy (%) of each variant, mean ± std over seeds "
             f"{', '.join(map(str, seeds))} ({first['cpu']}, its widest vector extensions: "
             f"{'AVX-512' if 'avx512f' in first['cpu_flags'] else 'AVX2 or narrower'}; "
             f"jax {first['jax']}); then seed 0 with XLA's CPU code capped "
             "(`XLA_FLAGS=--xla_cpu_max_isa=...`), as a CPU without those extensions runs it:", ""]
    header = ["variant", f"seeds {seeds[0]}–{seeds[-1]}"]
    capped = sorted((r for r in runs if r["seed"] == 0),
                    key=lambda r: (r["xla_cpu_max_isa"] != HOST, r["xla_cpu_max_isa"]),)
    header += [f"seed 0, {'no cap' if r['xla_cpu_max_isa'] == HOST else r['xla_cpu_max_isa']}"
               for r in capped]
    rows, moves = [], []
    for name in VARIANTS:
        if not all(name in r["variants"] for r in runs):
            continue
        accs = [r["variants"][name]["accuracy"] for r in capped]
        moves.append((max(accs) - min(accs), name))
        rows.append([name, _mean_std([r["variants"][name]["accuracy"] for r in host])]
                    + [f"{100 * a:.1f}" for a in accs])
    sep = ["---"] + ["---:"] * (len(header) - 1)
    lines += ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    move, name = max(moves)
    lines += ["", f"Between vector-extension caps, one seed's test accuracy moved by up to "
              f"{100 * move:.1f} points ({name}); from `reproductions/quickstart/spread/"
              f"{os.path.basename(path)}`."]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdirs", nargs="+", help="quickstart run directories")
    ap.add_argument("--out", required=True, help="the JSON to write")
    args = ap.parse_args(argv)
    rep = collect(args.workdirs)
    with open(args.out, "w") as f:
        json.dump(rep, f, indent=1, sort_keys=True)
        f.write("\n")
    print("\n".join(spread_block(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
