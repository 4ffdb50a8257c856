"""The classical floor under speaker normalisation: utterance statistics + logistic regression.

How to run::

    MMER_DATA_ROOT=/path/to/corpora python benchmarks/speaker_norm_floor.py --corpus emodb
    MMER_DATA_ROOT=/path/to/corpora python benchmarks/speaker_norm_floor.py --corpus turev_db
    python benchmarks/speaker_norm_floor.py --corpus emodb --folds 1 --out /tmp/f.json  # smoke

Neural speech models trained with ``data.speaker_norm`` are compared with this floor, so it reads
exactly what they read: every fold of the corpus's fold protocol through the project's own data
stack (``make_pipeline``, evaluation batches: the centre ``max_audio_s`` window of each clip;
``mmer_jax.data.device.prepare``: the model's log-mel features [B, T, F] and masks; rows with
weight > 0 only). Each clip becomes 3 x F utterance statistics over its valid frames (per log-mel
bin: mean, standard deviation, and the standard deviation of the frame-to-frame differences),
standardised on the training split; a class-balanced logistic regression is fitted for each C of
``C_GRID``, the C with the best validation UAR is kept (ties: the smaller C), and the test split
is scored once with it.

Modes (what the features are before the statistics): "none" (raw log-mel, ``feature_norm=False``),
"utterance" (per-utterance mean/variance normalisation, ``feature_norm=True``, the old default:
the per-bin means and standard deviations are then ~0 and ~1 by construction, so only the delta
statistics carry information), "mean" / "mean_var" (``data.speaker_norm``: each speaker's mean
over all of that speaker's clips, every split, labels unused, subtracted; "mean_var" also
divided by the speaker's standard deviation).

JSON: ``benchmarks/results/speaker-norm-floor-<corpus>-cpu-<date>.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

MODES = ("none", "utterance", "mean", "mean_var")
C_GRID = (0.01, 0.1, 1.0, 10.0)
MAX_ITER = 20000
BATCH = 32  # evaluation batch size: memory only, every clip is read once either way

# The corpora of issue 13 as the experiments read them (experiments/corpora.py).
CORPORA: dict[str, dict[str, Any]] = {
    "emodb": dict(corpus="emodb", config="default", fold_protocol="lso", manual="emodb",
                  max_audio_s=4.0),
    "turev_db": dict(corpus="folder", config="turev_db", fold_protocol="loso", manual="turev_db",
                     max_audio_s=2.0),
}

FEATURES = ("per clip, over its valid frames of the model's features (log-mel as in 'frontend', "
            "centre window of at most max_audio_s; evaluation batches through "
            "mmer_jax.data.device.prepare): mean of each bin, standard deviation of each bin, "
            "standard deviation of each bin's frame-to-frame difference (3 x n_mels numbers, "
            "population standard deviations)")
def selection_text() -> str:
    """How the classifier and C are chosen, as recorded in the JSON (reads ``MAX_ITER`` and
    ``C_GRID`` when called)."""
    return ("features standardised with the training split's mean and standard deviation; "
            f"sklearn LogisticRegression(class_weight='balanced', lbfgs, max_iter={MAX_ITER}) "
            f"fitted on the training split for each C in {list(C_GRID)}; the C with the highest "
            "validation UAR is kept (ties: the smaller C); the test split is scored once with "
            "it. UAR: mean recall over the classes present in the split (mmer_jax.train.metrics).")


MODE_TEXT = {
    "none": "raw log-mel (data.feature_norm=False, data.speaker_norm='none')",
    "utterance": "per-utterance mean/variance normalised log-mel (data.feature_norm=True)",
    "mean": "speaker mean subtracted (data.speaker_norm='mean'; statistics over all of the "
            "speaker's clips, every split, labels unused)",
    "mean_var": "speaker mean subtracted, divided by the speaker's standard deviation "
                "(data.speaker_norm='mean_var'; statistics as for 'mean')",
}


def data_config(mode: str, fold: int, *, corpus: str, config: str, fold_protocol: str,
                manual_dir: str, data_dir: str, max_audio_s: float):
    """The data section that reads fold ``fold`` with the features of ``mode``.

    Raises:
      ValueError: ``mode`` is not one of ``MODES``.
    """
    from mmer_jax.schema import DataConfig

    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {', '.join(MODES)}")
    return DataConfig(
        corpus=corpus, config=config, fold=fold, fold_protocol=fold_protocol,
        manual_dir=manual_dir, data_dir=data_dir, max_audio_s=max_audio_s, read_threads=0,
        feature_norm=mode == "utterance",
        speaker_norm=mode if mode in ("mean", "mean_var") else "none",
    )


def utterance_statistics(feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-clip statistics of frame features over the valid frames.

    Args:
      feats: [B, T, F] float frame features.
      mask: [B, T] bool, True on valid frames (at least 2 per row).

    Returns:
      [B, 3F] float64: per feature the mean, the standard deviation and the standard deviation of
      the frame-to-frame differences (population standard deviations, ddof=0).

    Raises:
      ValueError: a row has fewer than 2 valid frames (no difference to take).
    """
    rows = []
    for f, m in zip(np.asarray(feats, np.float64), np.asarray(mask, bool), strict=True):
        v = f[m]  # [T_valid, F]; valid frames are a prefix, so consecutive rows are neighbours
        if len(v) < 2:
            raise ValueError(f"a clip has {len(v)} valid frames; the statistics need at least 2")
        rows.append(np.concatenate([v.mean(0), v.std(0), np.diff(v, axis=0).std(0)]))
    return np.stack(rows)


def _feature_fn():
    import jax

    from mmer_jax.data import device

    # The data section is static: one compilation per (features setting, padded width);
    # read_fold clears the fold from it (it does not change the features), so folds share them.
    return jax.jit(lambda batch, data: device.prepare(batch, data), static_argnums=1)


def read_fold(data, features=None) -> dict[str, Any]:
    """Reads every split of one fold through the project's pipeline.

    Args:
      data: a ``DataConfig`` (see :func:`data_config`).
      features: a jitted ``(host batch, data) -> model batch`` (:func:`_feature_fn`); made when
        None.

    Returns:
      ``{"x": {split: [N, 3F] float64}, "y": {split: [N] int64}, "class_names": [K] str,
      "speakers": {split: [str]}, "clips": {split: int}, "fold": the fold view (or None)}``.

    Raises:
      UsageError / RunError: from ``make_pipeline`` (corpus, fold or split problems).
    """
    from mmer_jax.data.pipeline import SPLITS, make_pipeline

    features = features or _feature_fn()
    p = make_pipeline(data, ["audio"], seed=0)
    static = dataclasses.replace(data, fold=0, fold_protocol="")
    xs, ys = {}, {}
    for split in SPLITS:
        x, y = [], []
        for batch in p.batches(split, BATCH):
            keep = batch["weight"] > 0  # the last batch is padded with weight-0 copies
            host = {k: v for k, v in batch.items()
                    if k in ("label", "weight", "audio_pcm", "audio_len", "audio_norm")}
            model = features(host, static)
            x.append(utterance_statistics(np.asarray(model["audio"])[keep],
                                          np.asarray(model["audio_mask"])[keep]))
            y.append(np.asarray(batch["label"])[keep].astype(np.int64))
        xs[split], ys[split] = np.concatenate(x), np.concatenate(y)
        if len(ys[split]) != p.num_examples(split):
            raise RuntimeError(f"{split}: read {len(ys[split])} clips of "
                               f"{p.num_examples(split)}")
    return {"x": xs, "y": ys, "class_names": list(p.class_names), "speakers": p.split_speakers,
            "clips": {s: int(len(ys[s])) for s in SPLITS}, "fold": p.fold}


def uar(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted average recall (classes with true support only), as the trainer reports it."""
    from mmer_jax.train.metrics import metrics_from_confusion

    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return metrics_from_confusion(cm, [str(i) for i in range(num_classes)])["uar"]


def fit_and_score(x: dict[str, np.ndarray], y: dict[str, np.ndarray],
                  num_classes: int) -> dict[str, Any]:
    """Standardise on train, choose C on validation UAR, score the test split once.

    Args:
      x: ``{split: [N, D] float}`` utterance statistics of "train", "validation", "test".
      y: ``{split: [N] int}`` labels in [0, num_classes).
      num_classes: K.

    Returns:
      ``{"C": float, "validation_uar": float, "test_uar": float, "test_accuracy": float,
      "validation_uar_by_C": {str(C): float}}`` (UAR and accuracy as fractions in [0, 1]).

    Raises:
      ValueError: the training split holds fewer than 2 classes (from scikit-learn).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    scaler = StandardScaler().fit(x["train"])
    z = {s: scaler.transform(v) for s, v in x.items()}
    by_c, models = {}, {}
    for c in C_GRID:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            m = LogisticRegression(C=c, class_weight="balanced", max_iter=MAX_ITER)
            # One BLAS thread: beside JAX's thread pools, multi-threaded BLAS made each small
            # L-BFGS step ~10x slower on 2 cores.
            with threadpool_limits(1):
                m.fit(z["train"], y["train"])
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            print(f"  warning: C={c} did not converge in {MAX_ITER} iterations", flush=True)
        models[c] = m
        by_c[c] = uar(y["validation"], m.predict(z["validation"]), num_classes)
    best = max(C_GRID, key=lambda c: (by_c[c], -c))  # ties: the smaller C
    pred = models[best].predict(z["test"])  # the only look at the test split
    return {"C": best, "validation_uar": by_c[best],
            "test_uar": uar(y["test"], pred, num_classes),
            "test_accuracy": float(np.mean(pred == y["test"])),
            "validation_uar_by_C": {str(c): by_c[c] for c in C_GRID}}


def _mean_std(values: list[float]) -> dict[str, float | None]:
    # ddof=1 over folds; undefined (None) for a single fold.
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None}


def _pm(m: dict[str, float | None]) -> str:
    std = "n/a" if m["std"] is None else f"{100 * m['std']:.1f}"
    return f"{100 * m['mean']:.1f} ± {std}"


def run_floor(spec: dict[str, Any], modes=MODES, folds=None, data_dir="~/tensorflow_datasets",
              log=print) -> dict[str, Any]:
    """Runs the floor for every mode on every fold; returns the JSON record (without host info).

    Args:
      spec: ``corpus``, ``config``, ``fold_protocol``, ``manual_dir``, ``max_audio_s``.
      modes: names from ``MODES``.
      folds: 1-based fold numbers; None = every fold of the protocol.
      data_dir: the TFDS data directory (the build is made there when missing).
      log: called with one progress line per fold and mode.

    Returns:
      ``{"protocol": {...}, "folds": [{fold, speakers, clips}], "modes": {mode: {"description",
      "folds": [per-fold fit_and_score + "fold"], "test_uar", "validation_uar": {mean, std}}}}``;
      std is the sample standard deviation over folds (ddof=1; None for one fold).

    Raises:
      ValueError: an unknown mode; RuntimeError: folds disagree on classes or speakers between
      modes (they must be the same folds).
    """
    kw = dict(corpus=spec["corpus"], config=spec["config"], fold_protocol=spec["fold_protocol"],
              manual_dir=spec["manual_dir"], data_dir=data_dir, max_audio_s=spec["max_audio_s"])
    features = _feature_fn()
    fold_info: dict[int, dict] = {}
    out_modes: dict[str, Any] = {}
    protocol: dict[str, Any] = {}
    first = data_config(modes[0], 1, **kw)
    if not folds:  # every fold the build stores for the protocol
        from mmer_jax.data.sources import fold_view, open_builder

        folds = range(1, fold_view(open_builder(first), first)["num_folds"] + 1)
    for mode in modes:
        rows = []
        for k in folds:
            t0 = time.time()
            d = read_fold(data_config(mode, k, **kw), features)
            view = d["fold"]
            info = {"fold": k, "speakers": d["speakers"], "clips": d["clips"]}
            if fold_info.setdefault(k, info) != info:
                raise RuntimeError(f"fold {k} reads differently under mode {mode!r}")
            if not protocol:
                protocol = {"corpus": spec["corpus"], "config": spec["config"],
                            "classes": d["class_names"], "fold_protocol": view["protocol"],
                            "fold_protocol_description": view["description"],
                            "num_folds": view["num_folds"],
                            "speaker_independent": view["speaker_independent"],
                            "max_audio_s": spec["max_audio_s"],
                            "frontend": {"name": first.frontend, "n_mels": first.n_mels,
                                         "n_fft": first.n_fft, "hop": first.hop,
                                         "sample_rate": first.sample_rate},
                            "num_statistics": int(d["x"]["train"].shape[1])}
            elif d["class_names"] != protocol["classes"]:
                raise RuntimeError(f"fold {k} has classes {d['class_names']}")
            r = fit_and_score(d["x"], d["y"], len(d["class_names"]))
            rows.append({"fold": k, **r})
            log(f"{mode:>9} fold {k}: C={r['C']:g} validation UAR {100 * r['validation_uar']:.1f} "
                f"test UAR {100 * r['test_uar']:.1f} ({time.time() - t0:.0f} s)")
        out_modes[mode] = {
            "description": MODE_TEXT[mode], "folds": rows,
            "validation_uar": _mean_std([r["validation_uar"] for r in rows]),
            "test_uar": _mean_std([r["test_uar"] for r in rows]),
        }
    protocol.update(features=FEATURES, selection=selection_text(),
                    speakers_per_fold=[fold_info[k]["speakers"] for k in sorted(fold_info)])
    return {"protocol": protocol, "folds": [fold_info[k] for k in sorted(fold_info)],
            "modes": out_modes}


def table(record: dict[str, Any]) -> str:
    """The record as a markdown table: one row per mode, UAR % per fold (validation / test) and
    mean ± std over folds."""
    folds = [f["fold"] for f in record["folds"]]
    head = ("| mode | " + " | ".join(f"fold {k} val / test" for k in folds)
            + " | validation UAR | test UAR |")
    lines = [head, "|" + "---|" * (len(folds) + 3)]
    for mode, m in record["modes"].items():
        cells = [f"{100 * r['validation_uar']:.1f} / {100 * r['test_uar']:.1f}" for r in m["folds"]]
        lines.append(f"| {mode} | " + " | ".join(cells)
                     + f" | {_pm(m['validation_uar'])} | {_pm(m['test_uar'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Parses the flags, runs the floor, prints the table and writes the JSON; returns 0.

    Raises:
      SystemExit: bad flags.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True, choices=sorted(CORPORA))
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated: {','.join(MODES)}")
    p.add_argument("--folds", default="", help="comma-separated 1-based folds; '' = all")
    p.add_argument("--manual_dir", default="",
                   help="the corpus as distributed ('' = $MMER_DATA_ROOT/<corpus>)")
    p.add_argument("--data_dir", default="~/tensorflow_datasets")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"unknown mode {bad[0]!r} (choose from {', '.join(MODES)})")
    folds = [int(k) for k in args.folds.split(",") if k] or None
    spec = dict(CORPORA[args.corpus])
    manual = args.manual_dir or os.path.join(os.environ.get("MMER_DATA_ROOT", ""), spec["manual"])
    if not os.path.isdir(os.path.expanduser(manual)):
        p.error(f"no corpus at {manual!r}: set MMER_DATA_ROOT or --manual_dir")
    spec["manual_dir"] = manual

    import jax
    import sklearn

    load_before = os.getloadavg()
    t0 = time.time()
    record = run_floor(spec, modes, folds, args.data_dir)
    date = datetime.date.today().isoformat()
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    record = {
        "what": "speaker-norm-floor",
        "git": git, "date": date, "device": "cpu",
        "jax_backend": jax.default_backend(), "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "jax": jax.__version__, "sklearn": sklearn.__version__,
        **record,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "wall_s": time.time() - t0,
        "notes": ("UAR as fractions; std over folds with ddof=1. Shared 2-core CPU machine "
                  "(load averages above); the numbers do not depend on it."),
    }
    out = args.out or os.path.join(REPO, "benchmarks", "results",
                                   f"speaker-norm-floor-{args.corpus}-cpu-{date}.json")
    from mmer_jax.io_utils import atomic_write_json

    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    atomic_write_json(out, record)
    print(table(record))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
