"""Fine-tuning step of ``ssl_finetune`` (Whisper base end to end): the run's real train step.

How to run::

    python benchmarks/ssl_finetune_step.py                  # this machine's default device
    python benchmarks/ssl_finetune_step.py --device gpu     # on a GPU: float32 and bfloat16,
                                                            # XLA and the Pallas attention kernel
    python benchmarks/ssl_finetune_step.py --quick          # a smoke run (tiny encoder, batch 4)

What is timed: ``VariantTrainer.train_step`` of ``experiments/ssl_finetune_emodb.py`` (Whisper's
log-mel on the device, the encoder with its frozen stem, the weighted-layer head, the loss,
gradients, AdamW with layer-wise learning-rate decay and the warm-up schedule), on the data-
parallel mesh of every local device. It needs jax, flax, optax and orbax only: no corpus, no
tensorflow-datasets, no weights. The encoder is Whisper base's shape, randomly initialised (the
step's speed does not depend on the weights; ``--import`` uses a real import's shape instead),
and the batches are generated in the config's shapes: ``train.batch_size`` clips of 16-kHz PCM,
their lengths drawn uniformly between half and all of ``data.max_audio_s`` (EmoDB's clips are
1.2-8.9 s; the config cuts them at 8 s), labels uniform over 7 classes.

Method: per setting (dtype x attention implementation), a fresh trainer; ``--warmup`` steps
(compilation included, its time recorded apart), then ``--steps`` steps, each synchronised, and
the median and interquartile range of the step time; clips/s and audio seconds/s from the
median; the peak device memory where the backend reports it. JSON:
``benchmarks/results/ssl-finetune-step-<device>-<date>.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from bench_stats import quartiles  # noqa: E402

CONFIG = "experiments/ssl_finetune_emodb.py"
WHISPER_BASE = {"num_mel_bins": 80, "d_model": 512, "encoder_layers": 6,
                "encoder_attention_heads": 8, "encoder_ffn_dim": 2048,
                "max_source_positions": 1500, "activation": "gelu", "dropout": 0.0}
WHISPER_TINY = {**WHISPER_BASE, "d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 2,
                "encoder_ffn_dim": 128}
NUM_CLASSES = 7
SAMPLE_RATE = 16000


class GeneratedPipeline:
    """Random utterance batches in the shapes :class:`~mmer_jax.train.loop.VariantTrainer`
    reads (``audio_pcm`` [B, T] int16, ``audio_len`` [B] int32, ``label`` [B] int32, ``weight``
    [B] float32), the same batches every epoch."""

    num_classes = NUM_CLASSES
    vocab_size = 0

    def __init__(self, batch: int, max_s: float, n_batches: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        t = int(max_s * SAMPLE_RATE)
        self._batches = []
        for _ in range(n_batches):
            lens = rng.integers(t // 2, t + 1, size=batch).astype(np.int32)
            pcm = (rng.standard_normal((batch, t)) * 3000).astype(np.int16)
            pcm[np.arange(t)[None, :] >= lens[:, None]] = 0
            self._batches.append({"audio_pcm": pcm, "audio_len": lens,
                                  "label": rng.integers(0, NUM_CLASSES, batch).astype(np.int32),
                                  "weight": np.ones(batch, np.float32)})
        self.batch = batch

    def num_examples(self, split: str) -> int:
        return self.batch * len(self._batches)

    def steps_per_epoch(self, global_batch: int) -> int:
        return len(self._batches)

    def batches(self, split, global_batch, **_):
        return iter(self._batches)


def _record(args) -> str:
    if args.import_dir:
        from mmer_jax.models.encoders.imported import ImportedEncoderConfig, read_record

        rec = read_record(ImportedEncoderConfig(path=args.import_dir))
        return json.dumps({**rec, "sha256": "shape of " + rec["sha256"]})
    return json.dumps({"architecture": "whisper", "sha256": "random-init",
                       "config": WHISPER_TINY if args.quick else WHISPER_BASE})


def _peak_bytes() -> int | None:
    stats = [d.memory_stats() or {} for d in jax.local_devices()]
    peaks = [s.get("peak_bytes_in_use") for s in stats]
    return int(max(peaks)) if peaks and all(p is not None for p in peaks) else None


def measure(args, dtype: str, implementation: str) -> dict:
    """One setting: a fresh trainer on generated batches, warm-up then timed steps."""
    from mmer_jax import config as config_lib
    from mmer_jax.train import sharding as sh
    from mmer_jax.train.loop import VariantTrainer

    overrides = {"model.audio.path": "generated", "model.audio.record": _record(args),
                 "model.audio.dtype": dtype, "model.audio.implementation": implementation,
                 "train.dtype": dtype, "train.progress": False,
                 "train.num_devices": 0, "data.max_audio_s": args.seconds}
    if args.batch:
        overrides["train.batch_size"] = args.batch
    cfg = config_lib.load(os.path.join(REPO, CONFIG), [f"{k}={v}" for k, v in overrides.items()])
    batch = cfg.train.batch_size
    pipe = GeneratedPipeline(batch, args.seconds, n_batches=2)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = VariantTrainer(cfg, pipe, "audio", ["audio"], tmp)
        state = trainer.init_state(imports=False)
        host = list(pipe.batches("train", batch))
        on_mesh = [sh.to_global(b, trainer.mesh) for b in host]
        t0 = time.perf_counter()
        for i in range(args.warmup):
            state, metrics = trainer.train_step(state, on_mesh[i % len(on_mesh)])
        jax.block_until_ready(metrics)
        warmup_s = time.perf_counter() - t0
        times = []
        for i in range(args.steps):
            t = time.perf_counter()
            state, metrics = trainer.train_step(state, on_mesh[i % len(on_mesh)])
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - t)
        loss = float(metrics["loss"])
    q = quartiles(times)
    audio_s = float(np.mean([b["audio_len"].sum() for b in host])) / SAMPLE_RATE
    return {"dtype": dtype, "implementation": implementation, "batch": batch,
            "step_s": q, "clips_per_s": batch / q["median"],
            "audio_s_per_s": audio_s / q["median"], "warmup_s": warmup_s,
            "warmup_steps": args.warmup, "timed_steps": args.steps, "last_loss": loss,
            "peak_device_bytes": _peak_bytes()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default=None,
                   help="default: jax's default backend")
    p.add_argument("--settings", default=None,
                   help="comma-separated dtype:implementation pairs (default: float32:xla on a "
                        "CPU; float32:xla,bfloat16:xla,bfloat16:pallas on a GPU)")
    p.add_argument("--batch", type=int, default=0, help="default: the config's train.batch_size")
    p.add_argument("--seconds", type=float, default=8.0, help="longest clip (data.max_audio_s)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--import", dest="import_dir", default="",
                   help="an import directory whose encoder shape to use (weights not read)")
    p.add_argument("--quick", action="store_true",
                   help="a 2-layer 64-wide encoder, batch 4, 2-s clips, 1 + 2 steps")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    device = args.device or ("gpu" if jax.default_backend() == "gpu" else "cpu")
    if args.quick:
        args.batch, args.seconds, args.warmup, args.steps = args.batch or 4, 2.0, 1, 2
    default = ("float32:xla,bfloat16:xla,bfloat16:pallas" if device == "gpu"
               else "float32:xla")
    settings = [s.split(":") for s in (args.settings or default).split(",")]
    rows = []
    for dtype, impl in settings:
        try:
            row = measure(args, dtype, impl)
        except Exception as exc:  # a failing setting is recorded; the others still run
            row = {"dtype": dtype, "implementation": impl,
                   "error": f"{type(exc).__name__}: {exc}"[:500]}
        rows.append(row)
        if "error" in row:
            print(f"{dtype:>9} {impl:>7}  failed: {row['error']}")
        else:
            print(f"{dtype:>9} {impl:>7}  step {row['step_s']['median'] * 1e3:8.1f} ms "
                  f"(IQR {row['step_s']['iqr'] * 1e3:.1f})  {row['clips_per_s']:7.1f} clips/s  "
                  f"{row['audio_s_per_s']:7.1f} audio s/s  compile+warm-up {row['warmup_s']:.1f} s")
    if args.quick:
        print("(--quick: a 2-layer 64-wide encoder and 2 timed steps, a smoke run of the script; "
              "not Whisper base's speed)")
    date = datetime.date.today().isoformat()
    out = args.out or os.path.join(REPO, "benchmarks", "results",
                                   f"ssl-finetune-step-{device}-{date}.json")
    report = {"benchmark": "ssl_finetune_step", "config": CONFIG, "device": device,
              "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
              "jax": jax.__version__, "python": platform.python_version(),
              "cpu": platform.processor() or platform.machine(),
              "quick": args.quick,
              "what": ("smoke run: a 2-layer 64-wide Whisper-shaped encoder, not Whisper base"
                       if args.quick else "Whisper base's shape" + (
                           f" (from {args.import_dir})" if args.import_dir else "")),
              "encoder": json.loads(_record(args)), "clip_s_max": args.seconds,
              "weights": "random initialisation (speed only)", "date": date, "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
