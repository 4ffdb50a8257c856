"""Training throughput: mmer_jax's jitted train step against plain PyTorch (eager and compiled).

How to run (torch is the optional ``bench`` extra: ``pip install -e ".[bench]"``)::

    MMER_DATA_ROOT=/work/shared/data python benchmarks/train_compare_torch.py          # CPU, both
    python benchmarks/train_compare_torch.py --models quickstart --rounds 3 --quick    # a smoke run
    python benchmarks/train_compare_torch.py --device cuda                             # on a GPU

What is compared, per model (``s002``: ``experiments/s002_iemocap_text_paper.py``; ``quickstart``:
``experiments/quickstart.py``, its primary ``fused`` variant):

- ``mmer_jax``: the config's real train step (``VariantTrainer.train_step``: on-device features,
  forward, loss, gradients, optimizer update), driven by ``mmer_jax.bench``'s step timer;
- ``torch_eager`` / ``torch_compile``: ``benchmarks/torch_models.py``, the same architecture and
  sizes (read from the config), optimizer (Adam with L2 / AdamW + clipping + schedule as the
  config says), float32, the same host batches (the first ``--batches`` training batches of the
  config's own pipeline, converted once); ``torch.compile`` wraps the model (a compile failure is
  recorded in the JSON, not raised).

Every framework is warmed up (compiled) on every batch first; then ``--rounds`` rounds run the
frameworks in turn (A B C A B C ...), each round ``--passes`` passes over the batches, so drift in
a shared machine's load hits all alike. Reported: median and interquartile range over rounds of
dialogues/s and utterances/s (S002) or clips/s (quickstart), parameter counts, ratios to PyTorch
eager. JSON: ``benchmarks/results/train-compare-torch-<device>-<date>.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from bench_stats import quartiles  # noqa: E402

MODELS = {"s002": "experiments/s002_iemocap_text_paper.py",
          "quickstart": "experiments/quickstart.py"}
FRAMEWORKS = ("mmer_jax", "torch_eager", "torch_compile")
PARAM_TOLERANCE = 0.03  # torch counts may exceed Flax's by PyTorch's second LSTM bias only


class JaxRunner:
    """mmer_jax's train step of a config's primary variant, over ``n_batches`` training batches
    (:class:`mmer_jax.bench._StepTimer`, which compiles every shape first): generated in the
    recorded layout of the config's real batches (``layout``, :mod:`batch_layout`), or, with
    ``layout`` None, the first batches of the config's own pipeline (needs the corpus)."""

    name = "mmer_jax"

    def __init__(self, config: str, overrides: list[str], workdir: str, n_batches: int,
                 layout: dict | None = None):
        from mmer_jax import bench
        from mmer_jax import config as config_lib

        self.cfg = config_lib.load(config, list(overrides) + ["train.progress=false"])
        pipeline = None
        if layout is not None:
            import batch_layout

            unit = "dialogue" if self.cfg.data.get("unit") == "dialogue" else "utterance"
            pipeline = batch_layout.GeneratedPipeline(layout, n_batches, unit)
        self.trainer, self.pipeline = bench._primary_trainer(self.cfg, workdir,
                                                             pipeline=pipeline)
        t0 = time.perf_counter()
        self.timer = bench._StepTimer(self.trainer, n_batches)
        self.warmup_s = time.perf_counter() - t0
        # The same batches again, as host numpy arrays, for the other frameworks.
        it = self.trainer.batches("train", epoch=0, train=True)
        self.host = [b for _, b in zip(range(n_batches), it, strict=False)]
        counts = [bench._counts(b) for b in self.host]
        if counts != self.timer.counts:
            raise RuntimeError(f"batches differ between two reads: {counts} vs {self.timer.counts}")
        self.counts = counts
        self.params = int(sum(x.size for x in jax.tree.leaves(self.timer.state.params)))

    def rate(self, passes: int) -> tuple[float, float]:
        """(units/s, utterances/s) over ``passes`` passes over the batches."""
        units = self.timer.rate(passes * len(self.counts))
        return units, self.timer.utterances_per_s


def torch_model(model_name: str, cfg, vocab_size: int, num_classes: int, frame_size: int = 0):
    """The PyTorch model of ``model_name`` with the sizes of config ``cfg`` (its ``model`` and
    ``data`` sections).

    Args:
      model_name: "s002" or "quickstart".
      cfg: the loaded experiment config.
      vocab_size, num_classes: of the run's pipeline.
      frame_size: frame height = width (quickstart).

    Returns:
      A ``torch.nn.Module`` (:mod:`torch_models`).

    Raises:
      ValueError: an unknown model, or S002 with word and context BiLSTMs of different sizes.
    """
    import torch_models as tm

    m = cfg.model
    if model_name == "s002":
        if (m.context_hidden, m.context_layers) != (m.text.lstm_hidden, m.text.lstm_layers):
            raise ValueError("S002Torch assumes equal word and context BiLSTM sizes")
        return tm.S002Torch(vocab_size, num_classes, m.text.embed_dim, m.text.lstm_hidden,
                            m.text.lstm_layers, m.num_heads, m.dropout)
    if model_name != "quickstart":
        raise ValueError(f"unknown model {model_name!r}")
    from mmer_jax.data.features import EPS, mel_filterbank
    from mmer_jax.schema import DataConfig, from_section

    d = from_section(DataConfig, cfg.data, "data")
    enc = m.encoders
    model = tm.QuickstartTorch(
        mel_filterbank(d.sample_rate, d.n_fft, d.n_mels), vocab_size, num_classes, frame_size,
        d.n_fft, d.hop, width=enc.audio.width, video_widths=tuple(enc.frames.widths),
        video_hidden=enc.frames.hidden, text_embed=enc.text.embed_dim,
        text_hidden=enc.text.hidden, head_hidden=m.head_hidden, dropout=m.dropout,
        text_dropout=enc.text.dropout)
    model.logmel.eps = EPS
    return model


class TorchRunner:
    """A PyTorch model of the same config and its optimizer, stepping over the same batches."""

    def __init__(self, model_name: str, jx: JaxRunner, device: str, compiled: bool,
                 seed: int = 0):
        import torch
        import torch_models as tm

        self.torch, self.device, self.kind = torch, device, model_name
        self.name = "torch_compile" if compiled else "torch_eager"
        torch.manual_seed(seed)
        cfg, pipe = jx.cfg, jx.pipeline
        t = jx.trainer.train_cfg
        frame = int(jx.host[0]["frames_u8"].shape[2]) if "frames_u8" in jx.host[0] else 0
        self.model = torch_model(model_name, cfg, pipe.vocab_size, pipe.num_classes, frame)
        self.model.to(device).train()
        self.params = tm.count_params(self.model)
        self.bias_surplus = tm.lstm_bias_surplus(self.model)
        if t.optimizer == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=t.lr,
                                        weight_decay=t.weight_decay)
        elif t.optimizer == "adamw":
            self.opt = torch.optim.AdamW(self.model.parameters(), lr=t.lr,
                                         weight_decay=t.weight_decay)
        else:
            raise ValueError(f"train.optimizer={t.optimizer!r} has no torch counterpart here")
        total = max(jx.trainer.total_steps, 1)
        if t.schedule == "cosine":
            import math

            lam = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))  # noqa: E731
        else:
            lam = lambda s: 1.0  # noqa: E731
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lam)
        self.clip = t.grad_clip
        self.forward = torch.compile(self.model) if compiled else self.model
        host = jx.host
        if model_name == "s002":  # the torch model takes tokens [B, U, L] and packs itself
            host = [{"tokens": dialogue_tokens(b), **{k: b[k] for k in
                                                      ("utt_mask", "label", "weight")}}
                    for b in host]
        self.batches = [tm.to_torch(b, device) for b in host]
        self.counts = jx.counts
        t0 = time.perf_counter()
        for b in self.batches:  # warm-up: compiles every shape for torch.compile
            self.step(b)
        self._sync()
        self.warmup_s = time.perf_counter() - t0

    def _sync(self):
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def step(self, b: dict):
        """One training step on batch ``b``; returns the loss tensor (not synchronised)."""
        torch = self.torch
        self.opt.zero_grad(set_to_none=True)
        if self.kind == "s002":
            logits = self.forward(b["tokens"], b["utt_mask"])  # [B, U, C]
        else:
            logits = self.forward(b)  # [B, C]
        w = b["weight"].reshape(-1)
        per = torch.nn.functional.cross_entropy(logits.reshape(w.shape[0], -1),
                                                b["label"].reshape(-1).long(), reduction="none")
        loss = (per * w).sum() / w.sum().clamp(min=1.0)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.sched.step()
        return loss

    def rate(self, passes: int) -> tuple[float, float]:
        """(units/s, utterances/s) over ``passes`` passes over the batches."""
        units = utts = 0
        t0 = time.perf_counter()
        for _ in range(passes):
            for b, (u, n) in zip(self.batches, self.counts, strict=True):
                loss = self.step(b)
                units, utts = units + u, utts + n
        loss.item()
        self._sync()
        dt = time.perf_counter() - t0
        return units / dt, utts / dt


def add_ratios(rows: list[dict], unit: str) -> None:
    """Adds to each row its ratios to PyTorch eager and compiled: ``ratio_to_X`` (of the medians)
    and ``paired_ratio_to_X`` (median and range of the per-round ratios: the frameworks of one
    round ran back to back under the same load, so on a loaded machine these pairs hold where
    the medians, taken from different rounds, need not)."""
    by = {r["framework"]: r for r in rows}
    for r in rows:
        for ref in ("torch_eager", "torch_compile"):
            if ref not in by:
                continue
            r[f"ratio_to_{ref}"] = (r[f"{unit}_per_s"]["median"]
                                    / by[ref][f"{unit}_per_s"]["median"])
            per = [a / b for a, b in zip(r["rounds"], by[ref]["rounds"], strict=True)]
            r[f"paired_ratio_to_{ref}"] = {"median": float(np.median(per)), "min": min(per),
                                           "max": max(per), "per_round": per}


def dialogue_tokens(batch: dict) -> np.ndarray:
    """tokens [B, U, L] of a dialogue host batch, rebuilt from ``tokens_packed`` [N, L] and
    ``packed_slot`` [N] (flat slot ``b * U + u``; ``B * U`` on padding rows) when the pipeline
    packs utterances (``data.pack_utterances`` > 0)."""
    if "tokens" in batch:
        return batch["tokens"]
    b, u = batch["utt_mask"].shape
    packed = batch["tokens_packed"]
    tok = np.zeros((b * u + 1, packed.shape[1]), packed.dtype)
    tok[batch["packed_slot"]] = packed
    return tok[: b * u].reshape(b, u, -1)


def _padding_stats(model_name: str, host: list[dict]) -> dict:
    """The word positions mmer_jax's word BiLSTM runs over against the real words (S002)."""
    if model_name != "s002":
        return {}
    key = "tokens" if "tokens" in host[0] else "tokens_packed"
    pos = sum(int(b[key].size) for b in host)
    words = sum(int(((dialogue_tokens(b) > 0) & b["utt_mask"][..., None]).sum()) for b in host)
    slots = sum(int(b["utt_mask"].size) for b in host)
    utts = sum(int(b["utt_mask"].sum()) for b in host)
    return {"jax_token_key": key, "word_positions_in_batches": pos, "real_words": words,
            "real_word_fraction": words / pos, "utterance_slots": slots,
            "real_utterances": utts,
            "tokens_shapes": sorted({str(b[key].shape) for b in host})}


def compare(model_name: str, args) -> dict:
    """Runs one model's comparison; returns its JSON section."""
    config = MODELS[model_name]
    unit, utt = ("dialogues", "utterances") if model_name == "s002" else ("clips", "clips")
    print(f"== {model_name} ({config}) ==", flush=True)
    runners, errors, warm = [], {}, {}
    layout = None
    if args.layout:
        import batch_layout

        layout = batch_layout.load(args.layout, model_name)
    jx = JaxRunner(config, args.override, os.path.join(args.workdir, model_name), args.batches,
                   layout)
    warm["mmer_jax"] = jx.warmup_s
    if "mmer_jax" in args.frameworks:
        runners.append(jx)
    params = {"mmer_jax": jx.params}
    for fw in ("torch_eager", "torch_compile"):
        if fw not in args.frameworks:
            continue
        try:
            r = TorchRunner(model_name, jx, args.device, fw == "torch_compile")
        except Exception as e:  # noqa: BLE001 -- a torch.compile failure is a result
            errors[fw] = f"{type(e).__name__}: {e}"[:2000]
            errors[fw + "_traceback_tail"] = traceback.format_exc()[-1500:]
            print(f"{fw}: FAILED ({type(e).__name__}: {str(e)[:200]})", flush=True)
            continue
        runners.append(r)
        warm[fw] = r.warmup_s
        params[fw] = r.params
        params["torch_lstm_bias_hh"] = r.bias_surplus
    if "torch_eager" in params:
        rel = abs(params["torch_eager"] - jx.params) / jx.params
        params["relative_difference"] = rel
        params["torch_minus_bias_hh_equals_mmer_jax"] = (
            params["torch_eager"] - params["torch_lstm_bias_hh"] == jx.params)
        if rel > PARAM_TOLERANCE and not params["torch_minus_bias_hh_equals_mmer_jax"]:
            raise RuntimeError(f"parameter counts differ by {rel:.1%}: {params}")
    rates = {r.name: ([], []) for r in runners}
    load = []
    for i in range(args.rounds):
        for r in runners:
            a, b = r.rate(args.passes)
            rates[r.name][0].append(a)
            rates[r.name][1].append(b)
        load.append(os.getloadavg()[0])
        print(f"round {i + 1}/{args.rounds}: " + "  ".join(
            f"{n} {v[0][-1]:.2f}" for n, v in rates.items()) + f" {unit}/s", flush=True)
    rows = []
    for name, (u, n) in rates.items():
        row = {"framework": name, "unit": unit, f"{unit}_per_s": quartiles(u),
               "rounds": u, "warmup_s": warm[name]}
        if utt != unit:
            row[f"{utt}_per_s"] = quartiles(n)
            row["rounds_utterances"] = n
        rows.append(row)
    add_ratios(rows, unit)
    h = jx.host[0]
    return {
        "model": model_name, "config": config, "variant": jx.trainer.variant,
        "batches_from": (f"generated in the layout {os.path.relpath(args.layout, REPO)}"
                         if args.layout else "the config's own pipeline (real data)"),
        "load_average_1min_per_round": load,
        "data_pack_utterances": jx.cfg.data.get("pack_utterances"),
        "overrides": args.override, "unit": unit,
        "global_batch": jx.trainer.global_batch, "batches": len(jx.host),
        "batch_shapes": {k: list(v.shape) for k, v in h.items()},
        "units_per_pass": sum(c[0] for c in jx.counts),
        "utterances_per_pass": sum(c[1] for c in jx.counts),
        "params": params, "rows": rows, "errors": errors,
        "padding": _padding_stats(model_name, jx.host),
    }


def print_table(sections: list[dict]) -> None:
    """One line per (model, framework): median [q1, q3] of each rate and the ratios."""
    print(f"\n{'model':<11}{'framework':<15}{'rate (median [IQR])':<44}{'vs eager':>9}"
          f"{'vs compile':>11}  (ratios: median over rounds of the per-round ratio)")
    for s in sections:
        for r in s["rows"]:
            parts = []
            for key in (f"{s['unit']}_per_s", "utterances_per_s"):
                if key in r and (key == f"{s['unit']}_per_s" or s["unit"] != "utterances"):
                    q = r[key]
                    parts.append(f"{q['median']:.1f} [{q['q1']:.1f}, {q['q3']:.1f}] "
                                 f"{key.replace('_per_s', '/s')}")
            ve, vc = (r.get(f"paired_ratio_to_{k}") for k in ("torch_eager", "torch_compile"))
            ve, vc = ("" if v is None else f"{v['median']:.2f}x" for v in (ve, vc))
            print(f"{s['model']:<11}{r['framework']:<15}{'; '.join(dict.fromkeys(parts)):<44}"
                  f"{ve:>9}{vc:>11}")
        p = s["params"]
        print(f"{'':<11}params: " + ", ".join(f"{k} {v}" for k, v in p.items()
                                              if k in FRAMEWORKS + ("torch_lstm_bias_hh",)))
        for k, v in s["errors"].items():
            if not k.endswith("_traceback_tail"):
                print(f"{'':<11}{k}: {v[:160]}")


LAYOUT = os.path.join(REPO, "benchmarks", "data", "train_compare_layout.npz")
SETTINGS = ("1", "all")  # CPU thread settings, each its own pinned child process


def thread_env(setting: str, wait_policy: str, base: dict | None = None) -> tuple[dict, list]:
    """(environment, command prefix) of a child pinned to CPU thread setting ``setting``.

    "1": both frameworks on one core (``taskset`` to the first CPU this process may use), XLA
    single-threaded (``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``),
    torch and OpenMP 1 thread. "all": every core this process may use, as many torch / OpenMP
    threads, XLA's default thread pool. Both set ``OMP_WAIT_POLICY`` (PASSIVE by default: idle
    OpenMP workers sleep instead of spinning on the cores the other framework needs).

    Raises:
        ValueError: an unknown setting.
    """
    env = dict(os.environ if base is None else base)
    cpus = sorted(os.sched_getaffinity(0))
    env["OMP_WAIT_POLICY"] = wait_policy
    if setting == "1":
        n, prefix = 1, ["taskset", "-c", str(cpus[0])]
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    elif setting == "all":
        n, prefix = len(cpus), []
    else:
        raise ValueError(f"thread setting {setting!r} must be one of {SETTINGS}")
    env.update(OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n), MMER_TORCH_THREADS=str(n))
    return env, prefix


def _threads_record(torch) -> dict:
    """What this process actually runs with (read back, not the settings asked for)."""
    return {"affinity": sorted(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                              "OMP_WAIT_POLICY", "XLA_FLAGS")}}


def run_setting(args, models, torch) -> dict:
    """This process's comparison (one thread setting): its JSON section."""
    n = os.environ.get("MMER_TORCH_THREADS")
    if n:
        torch.set_num_threads(int(n))
        torch.set_num_interop_threads(1)
    return {"threads": args.child or "unpinned", **_threads_record(torch),
            "models": [compare(m, args) for m in models]}


def _run_children(args, argv) -> list[dict]:
    """Runs each thread setting in its own pinned child process, in turn; their sections."""
    import tempfile

    out = []
    for setting in args.threads:
        env, prefix = thread_env(setting, args.omp_wait_policy)
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            cmd = prefix + [sys.executable, os.path.abspath(__file__), *argv, "--child",
                            setting, "--child-out", tmp.name]
            print(f"-- threads={setting}: {' '.join(prefix)} OMP_WAIT_POLICY="
                  f"{env['OMP_WAIT_POLICY']} XLA_FLAGS={env.get('XLA_FLAGS', '')!r}", flush=True)
            subprocess.run(cmd, env=env, check=True)
            with open(tmp.name) as f:
                out.append(json.load(f))
    return out


def summarize(path: str) -> int:
    """Recomputes a record's ratios from its stored rounds (:func:`add_ratios`), rewrites it
    and prints its tables; returns 0."""
    with open(path) as f:
        record = json.load(f)
    for st in record["settings"]:
        for section in st["models"]:
            add_ratios(section["rows"], section["unit"])
        print(f"\n-- threads={st['threads']} (torch {st['torch_threads']}, affinity "
              f"{st['affinity']}, OMP_WAIT_POLICY={st['OMP_WAIT_POLICY']})")
        print_table(st["models"])
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    return 0


def record_layout(args, models) -> int:
    """Writes the layout of each model's first ``--batches`` real training batches."""
    import batch_layout

    arrays = {}
    for m in models:
        jx = JaxRunner(MODELS[m], args.override, os.path.join(args.workdir, m), args.batches)
        lay = batch_layout.layout_of(jx.host, jx.pipeline.vocab_size, jx.pipeline.num_classes)
        arrays.update({f"{m}/{k}": v for k, v in lay.items()})
    os.makedirs(os.path.dirname(args.record_layout) or ".", exist_ok=True)
    np.savez_compressed(args.record_layout, **arrays)
    print(f"written {args.record_layout}")
    return 0


def main(argv=None) -> int:
    """Parses the flags, runs the comparison, prints the table and writes the JSON; returns 0.

    Raises:
      RuntimeError: parameter counts of the two implementations differ by more than 3 % and
        not by exactly PyTorch's second LSTM bias.
      SystemExit: bad flags, or ``--device cuda`` without a GPU visible to torch.
      subprocess.CalledProcessError: a thread setting's child process failed.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="s002,quickstart", help="comma-separated: s002,quickstart")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--passes", type=int, default=1, help="passes over the batches per round")
    p.add_argument("--batches", type=int, default=4, help="distinct training batches")
    p.add_argument("--override", action="append", default=[],
                   help="KEY=VALUE config override for every model (repeatable)")
    p.add_argument("--quick", action="store_true", help="2 rounds over 2 batches")
    p.add_argument("--workdir", default="/tmp/mmer-train-compare-torch")
    p.add_argument("--out", default=None)
    p.add_argument("--layout", default=LAYOUT,
                   help="batch layout file (generated batches; '' = the configs' own pipelines, "
                        "which need the corpora)")
    p.add_argument("--threads", default=",".join(SETTINGS),
                   help="CPU thread settings, each run pinned in its own child process: 1 (one "
                        "core for both frameworks), all (every core); ignored on cuda")
    p.add_argument("--omp-wait-policy", default="PASSIVE", choices=["PASSIVE", "ACTIVE"])
    p.add_argument("--record-layout", default=None, metavar="NPZ",
                   help="write the layout of the configs' real batches to NPZ and stop")
    p.add_argument("--summarize", default=None, metavar="JSON",
                   help="recompute the ratios of a record from its rounds (adding the paired "
                        "ones to a record written before they existed), print its tables, stop")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--dry-run", action="store_true",
                   help="check flags, torch and the device; run nothing")
    args = p.parse_args(argv)
    args.frameworks = [f for f in args.frameworks.split(",") if f]
    args.threads = [t for t in args.threads.split(",") if t]
    models = [m for m in args.models.split(",") if m]
    bad = ([x for x in models if x not in MODELS] + [f for f in args.frameworks
                                                      if f not in FRAMEWORKS]
           + [t for t in args.threads if t not in SETTINGS])
    if bad:
        p.error(f"unknown model, framework or thread setting {bad[0]!r}")
    if args.quick:
        args.rounds, args.batches = min(args.rounds, 2), min(args.batches, 2)
    if args.record_layout:
        return record_layout(args, models)
    if args.summarize:
        return summarize(args.summarize)
    if args.layout and not os.path.exists(args.layout):
        p.error(f"--layout {args.layout}: no such file (record it with --record-layout)")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch {torch.__version__} sees no GPU")
    if args.dry_run:
        print(f"would compare {models} with {args.frameworks} on torch {torch.__version__} "
              f"{args.device}, jax {jax.__version__} {jax.default_backend()}")
        return 0
    if args.child:
        with open(args.child_out, "w") as f:
            json.dump(run_setting(args, models, torch), f)
        return 0
    load_before = os.getloadavg()
    t0 = time.time()
    on_cpu = args.device == "cpu"
    settings = (_run_children(args, argv) if on_cpu
                else [run_setting(args, models, torch)])
    date = datetime.date.today().isoformat()
    dev = jax.devices()[0]
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    record = {
        "what": "train-compare-torch",
        "git": git,
        "device": args.device if on_cpu else torch.cuda.get_device_name(),
        "jax_device": getattr(dev, "device_kind", dev.platform),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "torch": torch.__version__,
        "date": date,
        "dtype": "float32",
        "method": (
            "Each framework trains on the same --batches training batches (generated in the "
            "recorded layout of the config's real batches: shapes, masks, lengths and packing "
            "of the real data, random ids and samples; or the config's own pipeline), every "
            "shape compiled/warmed first; rounds interleave the frameworks (A B C A B C ...), "
            "one round = --passes passes over the batches, timed with perf_counter around the "
            "steps and ended by a device sync (block_until_ready / loss.item()). Rates: real "
            "units (dialogues or clips; rows with weight > 0) and real utterances per second; "
            "median and IQR over rounds. On the CPU each thread setting runs in its own child "
            "process with both frameworks pinned alike (threads=1: one core via taskset, XLA "
            "single-threaded, torch 1 intra-op and 1 inter-op thread; threads=all: every core, "
            "torch threads = cores, XLA's default pool), OMP_WAIT_POLICY as recorded; what each "
            "child actually ran with is read back into its section. mmer_jax runs the real "
            "jitted VariantTrainer.train_step; PyTorch models are benchmarks/torch_models.py "
            "with packed sequences (padding skipped)."),
        "rounds": args.rounds, "passes": args.passes,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "wall_s": time.time() - t0,
        "notes": ("Shared 2-core CPU machine: other jobs may run beside this one (load averages "
                  "per round in each section); ratios from interleaved rounds are more "
                  "trustworthy than absolute rates." if on_cpu else ""),
        "settings": settings,
    }
    out = args.out or os.path.join(REPO, "benchmarks", "results",
                                   f"train-compare-torch-{args.device.split(':')[0]}-{date}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    for st in settings:
        print(f"\n-- threads={st['threads']} (torch {st['torch_threads']}, affinity "
              f"{st['affinity']}, OMP_WAIT_POLICY={st['OMP_WAIT_POLICY']})")
        print_table(st["models"])
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
