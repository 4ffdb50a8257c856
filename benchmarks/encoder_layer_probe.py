"""Which layer of a pretrained encoder carries emotion: one linear probe per hidden state.

How to run (after ``mmer encoders fetch whisper-base``; the encoder-feature cache is computed
once if missing)::

    MMER_DATA_ROOT=/path/to/corpora python benchmarks/encoder_layer_probe.py --corpus turev_db
    MMER_DATA_ROOT=/path/to/corpora python benchmarks/encoder_layer_probe.py --corpus emodb \\
        --window own_length

For every fold of the corpus's fold protocol and every hidden state of the encoder (0 = the
input embedding, L - 1 = the last layer), each clip becomes the mean and standard deviation of
that state's frames (2 x D numbers, from the same encoder-feature cache ``ssl_probe`` reads);
features are standardised on the training split, a class-balanced logistic regression is fitted
for each C of ``C_GRID``, the C with the best validation UAR is kept (ties: the smaller C) and
the test split is scored once with it. The same is done for the mean of all states
("all, averaged"). No speaker normalisation. The ANCHORS.md probe is this with the last state
only, own-length clips and C chosen on inner speaker-grouped folds.

JSON: ``benchmarks/results/encoder-layer-probe-<corpus>-<window>-cpu-<date>.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

C_GRID = (0.001, 0.01, 0.1, 1.0)
CONFIGS = {"emodb": "experiments/ssl_probe_emodb.py",
           "turev_db": "experiments/ssl_probe_turev_db.py"}


def _uar(y: np.ndarray, p: np.ndarray) -> float:
    """Mean recall over the classes present in ``y``."""
    return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))


def probe(train, val, test) -> dict:
    """(X, y) triples -> validation-chosen C, its validation and test UAR."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train[0])
    xs = [scaler.transform(x) for x, _ in (train, val, test)]
    best = None
    for c in C_GRID:
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        clf.fit(xs[0], train[1])
        v = _uar(val[1], clf.predict(xs[1]))
        if best is None or v > best[0]:
            best = (v, c, clf)
    return {"C": best[1], "validation_uar": best[0],
            "test_uar": _uar(test[1], best[2].predict(xs[2]))}


def fold_features(cfg, fold: int):
    """{split: (ids, labels)} of fold ``fold`` and the cache, through the project's data stack."""
    from mmer_jax.data import encoder_cache, sources
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.train.encoder_features import ensure_cache

    data = from_section(DataConfig, {**cfg.data.to_dict(), "fold": fold}, "data")
    builder = sources.open_builder(data)
    cache = encoder_cache.EncoderCache(ensure_cache(builder, data, progress=False))
    out = {}
    for split, src in sources.open_splits(builder, data).items():
        recs = list(sources.iterate(src))
        out[split] = ([sources.as_str(r["id"]) for r in recs],
                      np.array([int(r["label"]) for r in recs]))
    return out, cache


def statistics_of(cache, ids: list[str]) -> np.ndarray:
    """[N, L, 2D] per clip and hidden state: mean and standard deviation over its frames."""
    rows = []
    for i in ids:
        x = cache.get(i).astype(np.float32)  # [T, L, D]
        rows.append(np.concatenate([x.mean(0), x.std(0)], axis=-1))
    return np.stack(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", choices=sorted(CONFIGS), required=True)
    p.add_argument("--window", choices=("padded", "own_length"), default="padded",
                   help="data.encoder_window of the cache read")
    p.add_argument("--folds", default="all", help="all or K,K")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from mmer_jax import config as config_lib
    from mmer_jax.data import sources
    from mmer_jax.schema import DataConfig, from_section

    cfg = config_lib.load(CONFIGS[args.corpus], [f"data.encoder_window={args.window}"])
    data = from_section(DataConfig, cfg.data, "data")
    from data_prep import folds as folds_lib

    n = folds_lib.protocols_of(sources.open_builder(data).data_dir)[data.fold_protocol]
    fold_ids = range(1, n + 1) if args.folds == "all" else [int(k) for k in args.folds.split(",")]
    t0 = time.time()
    per_state: dict[str, list] = {}
    for k in fold_ids:
        splits, cache = fold_features(cfg, k)
        stats = {s: statistics_of(cache, ids) for s, (ids, _) in splits.items()}
        labels = {s: y for s, (_, y) in splits.items()}
        names = [str(i) for i in range(cache.layers)] + ["all, averaged"]
        for j, name in enumerate(names):
            pick = (lambda a: a.mean(1)) if name.startswith("all") else (lambda a, j=j: a[:, j])
            triple = [(pick(stats[s]), labels[s]) for s in ("train", "validation", "test")]
            per_state.setdefault(name, []).append({"fold": k, **probe(*triple)})
        print(f"fold {k}: " + ", ".join(f"{nm} {100 * per_state[nm][-1]['validation_uar']:.0f}/"
                                        f"{100 * per_state[nm][-1]['test_uar']:.0f}"
                                        for nm in names), file=sys.stderr)
    summary = {}
    for name, rows in per_state.items():
        v = [r["validation_uar"] for r in rows]
        t = [r["test_uar"] for r in rows]
        summary[name] = {"validation_uar_mean": statistics.mean(v),
                         "validation_uar_std": statistics.stdev(v) if len(v) > 1 else 0.0,
                         "test_uar_mean": statistics.mean(t),
                         "test_uar_std": statistics.stdev(t) if len(t) > 1 else 0.0,
                         "per_fold": rows}
    date = datetime.date.today().isoformat()
    out = args.out or os.path.join(REPO, "benchmarks", "results",
                                   f"encoder-layer-probe-{args.corpus}-{args.window}-cpu-"
                                   f"{date}.json")
    result = {"what": "encoder-layer-probe", "corpus": args.corpus, "date": date,
              "device": "cpu", "cpu": platform.processor() or platform.machine(),
              "encoder": cfg.data.encoder, "encoder_window": args.window,
              "fold_protocol": data.fold_protocol, "folds": list(fold_ids),
              "features": "per clip and hidden state: mean and standard deviation over its frames",
              "selection": f"standardised on train; LogisticRegression(class_weight='balanced') "
                           f"for C in {list(C_GRID)}, best validation UAR (ties: smaller C); "
                           "test scored once",
              "seconds": time.time() - t0, "states": summary}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    for name, s in summary.items():
        print(f"state {name:>14}: validation UAR {100 * s['validation_uar_mean']:5.1f} ± "
              f"{100 * s['validation_uar_std']:4.1f}   test UAR {100 * s['test_uar_mean']:5.1f} ± "
              f"{100 * s['test_uar_std']:4.1f}")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
