"""Probes of TurEV-DB's cross-speaker ceiling: what the speech recipe's network gains from
speaker-wise normalisation inside the network, pitch channels, a seed ensemble, and late fusion
with a classical model, on the recipe's leave-one-speaker-out folds.

How to run::

    MMER_DATA_ROOT=/path/to/corpora python benchmarks/turev_probes.py            # ~30 min, 2 cores
    python benchmarks/turev_probes.py --modes bn --seeds 1 --folds 1 --out /tmp/p.json  # smoke

A probe, not a harness run: it trains ``speech_recipe_turev_db.py``'s network (the project's
``speech_cnn`` encoder, 1-D, 64-64-128-128, BatchNorm over valid frames, statistics pooling,
Dense 128, dropout 0.3, linear head; AdamW 2e-3, decay 1e-2, 40 warmup steps then cosine, 15
epochs of batch 32) in a plain loop on features computed once, so that variants the recipe does
not have can be tried in minutes. Folds as the build's ``loso`` protocol (speakers sorted; test
= speaker k, validation = speaker k+1, train = the other four); the epoch is chosen on
validation UAR and test is read there. Inputs: the centre 2 s of each clip at 16 kHz, 64 log-mel
bins (``features.logmel_jax``), each speaker's mean log-mel vector subtracted (labels unused),
as ``data.speaker_norm = "mean"``. Where the loop differs from the trainer: no gradient clipping
(the trainer clips at global norm 1), the cosine decays to 0 (the trainer's to 1 % of the peak),
and clips longer than 2 s always give their centre window (the trainer draws a random one in
training).

Modes (``--modes``):

* ``bn``: the recipe's network as configured.
* ``adabn``: trained as ``bn``; at evaluation every BatchNorm uses the statistics of the clips
  of the evaluated speaker instead of the running averages (adaptive BatchNorm).
* ``speaker_bn``: every BatchNorm uses per-speaker statistics in training (the clips of each
  speaker in the batch) and at evaluation (all clips of the evaluated speaker).
* ``pitch``: ``bn`` with two more input channels: pYIN F0 in semitones relative to the speaker's
  median voiced F0 (divided by 6, 0 where unvoiced) and the voicing probability.

Per mode the JSON holds each fold x seed's selected epoch, validation and test UAR; the seed
ensemble per fold (softmax averaged over the seeds at their selected epochs); and late fusion of
that ensemble with class-balanced logistic regression on utterance statistics (3 x 64 log-mel
statistics as ``speaker_norm_floor.py`` + 10 pitch statistics; C in {0.01, 0.1, 1} chosen on
validation UAR), the fusion weight chosen two ways: one weight for every fold on the mean
validation UAR over folds (each fold's validation speaker is the next fold's test speaker, so this
pooled choice sees every test speaker through another fold), and per fold on that fold's
validation speaker alone.

JSON: ``benchmarks/results/turev-probes-cpu-<date>.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks.speaker_norm_floor import uar as floor_uar  # noqa: E402
from benchmarks.speaker_norm_floor import utterance_statistics  # noqa: E402

CLASSES = ("Angry", "Calm", "Happy", "Sad")  # the folder names of the corpus
SR, CLIP = 16000, 32000  # 2 s at 16 kHz: the recipe's data.max_audio_s
MODES = ("bn", "adabn", "speaker_bn", "pitch")
FUSION_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # weight of the network's probabilities


def load_clips(root: str) -> dict:
    """Every clip of ``<root>/turev_db/Sound Source/<Class>/*.wav``: centre 2 s at 16 kHz.

    Returns:
      ``{"wav": [N, 32000] float32, "n": [N] valid samples, "speaker": [N] str, "label": [N]}``.

    Raises:
      FileNotFoundError: no clip found (names the folder).
    """
    import librosa
    import soundfile as sf

    folder = os.path.join(root, "turev_db", "Sound Source")
    files = sorted(glob.glob(os.path.join(folder, "*", "*.wav")))
    if not files:
        raise FileNotFoundError(f"no TurEV-DB clip under {folder!r}")
    wav, n, spk, lab = [], [], [], []
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        x = librosa.resample(x.mean(1) if x.ndim > 1 else x, orig_sr=sr, target_sr=SR)
        start = max(0, (len(x) - CLIP) // 2)
        x = x[start:start + CLIP]
        w = np.zeros(CLIP, np.float32)
        w[:len(x)] = x
        wav.append(w)
        n.append(len(x))
        spk.append(os.path.basename(f).split("_")[0])
        lab.append(CLASSES.index(os.path.basename(os.path.dirname(f))))
    return {"wav": np.stack(wav), "n": np.array(n), "speaker": np.array(spk),
            "label": np.array(lab)}


def _pyin(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    f0, _, p = librosa.pyin(clip, fmin=60, fmax=600, sr=SR, frame_length=1024, hop_length=160)
    return np.nan_to_num(f0), p


def pitch_track(wav: np.ndarray, n: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """pYIN F0 (Hz, 0 where unvoiced) and voicing probability per 10 ms frame: [N, frames]
    (one process per core: pYIN takes ~0.1 s a clip)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    f0s, probs = np.zeros((len(wav), frames), np.float32), np.zeros((len(wav), frames), np.float32)
    # spawn, not fork: JAX's threads are already running in this process
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(os.cpu_count(), mp_context=spawn) as pool:
        tracks = pool.map(_pyin, [w[:k] for w, k in zip(wav, n, strict=True)], chunksize=16)
        for i, (f0, p) in enumerate(tracks):
            m = min(frames, len(f0))
            f0s[i, :m], probs[i, :m] = f0[:m], p[:m]
    return f0s, probs


def speaker_semitones(f0: np.ndarray, mask: np.ndarray, sid: np.ndarray) -> np.ndarray:
    """F0 in semitones relative to each speaker's median voiced F0; 0 where unvoiced."""
    st = 12 * np.log2(np.maximum(f0, 1.0) / 100.0)
    voiced = (f0 > 0) & mask
    for k in np.unique(sid):
        i = sid == k
        st[i] -= np.median(st[i][voiced[i]])
    return np.where(voiced, st, 0.0)


def pitch_statistics(st: np.ndarray, f0: np.ndarray, prob: np.ndarray, mask: np.ndarray):
    """[N, 10]: mean, std, 10th/90th percentile, range, mean and std of the frame-to-frame change,
    and slope of the voiced semitones; voiced fraction; mean voicing probability."""
    rows = []
    for s, f, p, m in zip(st, f0, prob, mask, strict=True):
        v = (f > 0) & m
        x = s[v] if v.sum() > 2 else np.zeros(3)
        d = np.diff(x)
        rows.append([x.mean(), x.std(), np.percentile(x, 10), np.percentile(x, 90),
                     x.max() - x.min(), d.mean(), d.std(), np.polyfit(np.arange(len(x)), x, 1)[0],
                     v[m].mean(), p[m].mean()])
    return np.array(rows)


def uar(y: np.ndarray, pred: np.ndarray) -> float:
    """UAR over the classes present in ``y``, as the trainer reports it."""
    return floor_uar(y, pred, len(CLASSES))


def make_network(mode: str):
    """The recipe's network with BatchNorm replaced as ``mode`` asks (see the docstring)."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from mmer_jax.models.encoders.speech_cnn import SpeechCNN, SpeechCNNConfig

    class SpeakerBatchNorm(nn.Module):
        """BatchNorm over [B, T, 1, C] with statistics per speaker (one-hot [B, S]) over valid
        frames; the same parameter names as ``nn.BatchNorm``, so ``adabn`` reads trained ones."""

        onehot: jnp.ndarray

        @nn.compact
        def __call__(self, x, mask):
            c = x.shape[-1]
            m = mask.astype(jnp.float32)
            oh = self.onehot * (m.sum(1) > 0)[:, None]
            count = jnp.einsum("bs,bt->s", oh, m)[:, None] + 1e-6
            mu = oh @ (jnp.einsum("bs,btc,bt->sc", oh, x[:, :, 0], m) / count)
            var = oh @ (jnp.einsum("bs,btc,bt->sc", oh, (x[:, :, 0] - mu[:, None]) ** 2, m)
                        / count)
            y = (x - mu[:, None, None]) * jax.lax.rsqrt(var[:, None, None] + 1e-5)
            return (y * self.param("scale", nn.initializers.ones, (c,))
                    + self.param("bias", nn.initializers.zeros, (c,)))

    class ProbeCNN(SpeechCNN):
        onehot: jnp.ndarray | None = None
        speaker_train: bool = False
        speaker_eval: bool = False

        def _norm(self, x, mask, train, name):
            if (self.speaker_train if train else self.speaker_eval):
                return SpeakerBatchNorm(self.onehot, name=name)(x, mask)
            return super()._norm(x, mask, train, name)

    cfg = SpeechCNNConfig(channels=(64, 64, 128, 128), conv="1d", stem_stride=1, norm="batch")

    class Net(nn.Module):
        onehot: jnp.ndarray

        @nn.compact
        def __call__(self, x, mask, train: bool):
            feat = ProbeCNN(cfg, self.onehot, speaker_train=mode == "speaker_bn",
                            speaker_eval=mode in ("adabn", "speaker_bn"), name="enc")(
                x, mask, train=train)
            z = nn.Dropout(0.3)(feat, deterministic=not train)
            return nn.Dense(len(CLASSES))(z)

    return Net


def train_fold(x, mask, y, sid, fold: int, seed: int, mode: str, epochs: int = 15,
               batch: int = 32) -> dict:
    """One fold x seed; returns the selected epoch, validation and test UAR and the softmax of
    the validation and test clips at that epoch."""
    import jax
    import optax

    num_spk = int(sid.max()) + 1
    te, va = fold, (fold + 1) % num_spk
    tr = np.where((sid != te) & (sid != va))[0]
    vi, ti = np.where(sid == va)[0], np.where(sid == te)[0]
    net_cls = make_network(mode)
    onehot = np.eye(num_spk, dtype=np.float32)[sid]
    rng = jax.random.PRNGKey(seed)
    v = net_cls(onehot[:2]).init({"params": rng, "dropout": rng}, x[:2], mask[:2], True)
    params, stats = v["params"], v.get("batch_stats", {})
    steps = epochs * -(-len(tr) // batch)
    opt = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 2e-3, 40, steps),
                      weight_decay=1e-2)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, stats, opt_state, xb, mb, yb, wb, oh, key):
        def loss_fn(p):
            logits, new = net_cls(oh).apply({"params": p, "batch_stats": stats}, xb, mb, True,
                                            rngs={"dropout": key}, mutable=["batch_stats"])
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
            return (ce * wb).sum() / wb.sum(), new.get("batch_stats", stats)

        (_, new_stats), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
        upd, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, upd), new_stats, opt_state

    @jax.jit
    def probs(params, stats, xb, mb, oh):
        # one call per speaker's whole split: the speaker statistics see every clip of it
        logits = net_cls(oh).apply({"params": params, "batch_stats": stats}, xb, mb, False)
        return jax.nn.softmax(logits)

    order = np.random.RandomState(seed)
    best = {"validation_uar": -1.0}
    for epoch in range(epochs):
        perm = order.permutation(tr)
        for b in range(0, len(perm), batch):
            idx = perm[b:b + batch]
            w = np.ones(batch, np.float32)
            if len(idx) < batch:  # the last batch padded with weight-0 copies
                w[len(idx):] = 0
                idx = np.concatenate([idx, perm[:batch - len(idx)]])
            rng, key = jax.random.split(rng)
            params, stats, opt_state = step(params, stats, opt_state, x[idx], mask[idx], y[idx],
                                            w, onehot[idx], key)
        pv = np.asarray(probs(params, stats, x[vi], mask[vi], onehot[vi]))
        score = uar(y[vi], pv.argmax(1))
        if score > best["validation_uar"]:
            pt = np.asarray(probs(params, stats, x[ti], mask[ti], onehot[ti]))
            best = {"epoch": epoch + 1, "validation_uar": score,
                    "test_uar": uar(y[ti], pt.argmax(1)), "p_val": pv, "p_test": pt}
    return best


def classical_probs(feats, y, sid, fold: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Class-balanced logistic regression, C chosen on validation UAR: (validation softmax,
    test softmax, C)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    va = (fold + 1) % (int(sid.max()) + 1)
    tr = (sid != fold) & (sid != va)
    sc = StandardScaler().fit(feats[tr])
    best = None
    for c in (0.01, 0.1, 1.0):
        clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
        clf.fit(sc.transform(feats[tr]), y[tr])
        score = uar(y[sid == va], clf.predict(sc.transform(feats[sid == va])))
        if best is None or score > best[0]:
            best = (score, clf, c)
    clf = best[1]
    return (clf.predict_proba(sc.transform(feats[sid == va])),
            clf.predict_proba(sc.transform(feats[sid == fold])), best[2])


def per_fold_choice(fusion: dict, num_folds: int) -> dict:
    """The fusion weight of each fold chosen on that fold's validation UAR alone (ties: the
    smaller weight), and the test UAR at those weights.

    Args:
      fusion: ``{str(weight): {"validation": {"per_fold": [...]}, "test": {"per_fold": [...]}}}``
        over :data:`FUSION_WEIGHTS` (percent).
      num_folds: the folds in each ``per_fold`` list.

    Returns:
      ``{"weights": [per fold], "test": {"mean", "std", "per_fold"}}`` (percent).
    """
    weights, test = [], []
    for k in range(num_folds):
        w = max(FUSION_WEIGHTS, key=lambda w: fusion[str(w)]["validation"]["per_fold"][k])
        weights.append(w)
        test.append(fusion[str(w)]["test"]["per_fold"][k] / 100)
    return {"weights": weights, "test": _mean_std(test)}


def _mean_std(values) -> dict:
    v = np.asarray(values, float) * 100
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "per_fold": [round(float(a), 1) for a in v]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--folds", default="all", help="'all' or comma-separated 1-based folds")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    modes = args.modes.split(",")
    if bad := [m for m in modes if m not in MODES]:
        ap.error(f"--modes: {bad} not in {MODES}")
    root = os.environ.get("MMER_DATA_ROOT", os.path.join(REPO, "..", "shared", "data"))
    import jax.numpy as jnp

    from mmer_jax.data import features

    t0 = time.time()
    clips = load_clips(root)
    feats, mask = features.logmel_jax(jnp.asarray(clips["wav"]), jnp.asarray(clips["n"]),
                                      n_mels=64)
    x, mask = np.array(feats, np.float32), np.array(mask)
    speakers = sorted(set(clips["speaker"]))
    sid = np.array([speakers.index(s) for s in clips["speaker"]])
    y = clips["label"]
    for k in range(len(speakers)):  # data.speaker_norm = "mean": labels unused
        i = sid == k
        x[i] -= x[i][mask[i]].mean(0)
    x = np.where(mask[..., None], x, 0.0).astype(np.float32)
    f0, prob = pitch_track(clips["wav"], clips["n"], x.shape[1])
    st = speaker_semitones(f0, mask, sid)
    classical = np.concatenate([utterance_statistics(x, mask),
                                pitch_statistics(st, f0, prob, mask)], 1)
    pitch_x = np.concatenate([x, (st / 6.0)[..., None], (prob * mask)[..., None]], -1)
    print(f"features of {len(y)} clips in {time.time() - t0:.0f} s", flush=True)

    folds = (list(range(len(speakers))) if args.folds == "all"
             else [int(f) - 1 for f in args.folds.split(",")])
    lr = {k: classical_probs(classical, y, sid, k) for k in folds}
    out = {"benchmark": "turev_probes", "date": datetime.date.today().isoformat(),
           "device": f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
           "protocol": "TurEV-DB 4 classes, loso folds (test = speaker k, validation = k+1), "
                       "speaker-mean log-mel, epoch chosen on validation UAR; UAR in percent",
           "speakers": speakers, "seeds": args.seeds,
           "classical": {"validation": None, "test": _mean_std(
               [uar(y[sid == k], lr[k][1].argmax(1)) for k in folds])},
           "modes": {}}
    for mode in modes:
        runs = {k: [train_fold(pitch_x if mode == "pitch" else x, mask, y, sid, k, s, mode)
                    for s in range(args.seeds)] for k in folds}
        for k in folds:
            for s, r in enumerate(runs[k]):
                print(f"{mode} fold {k + 1} seed {s}: epoch {r['epoch']}, validation "
                      f"{100 * r['validation_uar']:.1f}, test {100 * r['test_uar']:.1f}",
                      flush=True)
        vy = {k: y[sid == (k + 1) % len(speakers)] for k in folds}
        ens = {k: (np.mean([r["p_val"] for r in runs[k]], 0),
                   np.mean([r["p_test"] for r in runs[k]], 0)) for k in folds}
        fusion = {}
        for w in FUSION_WEIGHTS:
            val = {k: w * ens[k][0] + (1 - w) * lr[k][0] for k in folds}
            test = {k: w * ens[k][1] + (1 - w) * lr[k][1] for k in folds}
            fusion[str(w)] = {
                "validation": _mean_std([uar(vy[k], val[k].argmax(1)) for k in folds]),
                "test": _mean_std([uar(y[sid == k], test[k].argmax(1)) for k in folds])}
        chosen = max(FUSION_WEIGHTS, key=lambda w: fusion[str(w)]["validation"]["mean"])
        per_fold = per_fold_choice(fusion, len(folds))
        out["modes"][mode] = {
            "runs": {str(k + 1): [{key: r[key] for key in ("epoch", "validation_uar", "test_uar")}
                                  for r in runs[k]] for k in folds},
            "single": {"validation": _mean_std([np.mean([r["validation_uar"] for r in runs[k]])
                                                for k in folds]),
                       "test": _mean_std([np.mean([r["test_uar"] for r in runs[k]])
                                          for k in folds])},
            "seed_ensemble": fusion["1.0"],
            "fusion_by_weight": fusion,
            "fusion_chosen_on_validation": {"weight": chosen, **fusion[str(chosen)]},
            "fusion_chosen_per_fold": per_fold}
        m = out["modes"][mode]

        def pm(d):
            return f"{d['mean']:.1f} ± {d['std']:.1f}"
        print(f"{mode}: single test {pm(m['single']['test'])} (validation "
              f"{pm(m['single']['validation'])}); seed ensemble {pm(fusion['1.0']['test'])}; "
              f"fused (w={chosen}) {pm(fusion[str(chosen)]['test'])}", flush=True)
    out["classical"]["validation"] = _mean_std(
        [uar(y[sid == (k + 1) % len(speakers)], lr[k][0].argmax(1)) for k in folds])
    out["wall_s"] = round(time.time() - t0, 1)
    path = args.out or os.path.join(REPO, "benchmarks", "results",
                                    f"turev-probes-cpu-{out['date']}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
