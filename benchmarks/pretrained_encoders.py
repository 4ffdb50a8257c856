"""Pretrained encoders, forward and forward+backward: mmer_jax against transformers' PyTorch.

How to run (the reference side is the ``ref`` extra: ``pip install -e ".[ref]"``)::

    python benchmarks/pretrained_encoders.py                      # CPU: 1 thread and all cores
    python benchmarks/pretrained_encoders.py --quick              # a smoke run (1 round, batch 2)
    python benchmarks/pretrained_encoders.py --device gpu         # on a GPU (adds the kernel row)

Models (random weights; the speed does not depend on them): Whisper base's encoder
(``WhisperConfig`` sizes of openai/whisper-base, its position table cut to the clip: a 4-s clip
is 400 log-mel frames, 200 positions, since transformers' encoder accepts only full windows) and
a WavLM-base-sized encoder (``WavLMConfig`` defaults: 768 wide, 12 layers, gated relative
position bias), at batch 8 x 4 s of 16 kHz audio. Each reference model is saved with
``save_pretrained`` and imported through ``mmer encoders import``, so both sides run the same
weights; the maximum output difference is recorded as a check.

Sides: ``mmer_jax`` with ``implementation="xla"`` (jitted), ``mmer_jax`` with the Pallas kernel
(``"pallas"``, GPU only: on a CPU the kernel runs only in Pallas' interpreter, a correctness
tool), ``torch_eager`` and ``torch_compile`` (``torch.compile`` of the same module; a failure is
recorded, not raised). Passes: ``fwd`` (inference, no gradient) and ``fwd+bwd`` (gradients of
``sum(last_hidden_state ** 2)`` with respect to every parameter; PyTorch's ``.grad`` are set to
None between calls).

Method: every thread setting runs in a fresh child process whose CPU affinity is pinned to that
many cores, with ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and ``torch.set_num_threads`` set to it,
``OMP_WAIT_POLICY=PASSIVE`` (spinning OpenMP workers otherwise steal the cores the other side is
timed on), and XLA's CPU thread pool limited by ``--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` for one thread. All sides are warmed up (compiled) first; then
``--rounds`` rounds time the sides in turn, the starting side rotating, each round ``--calls``
calls after a synchronisation. Reported per row: median and interquartile range of ms per call
over rounds, and the ratio to PyTorch eager's median in the same process; the load average before
and after each child, the CPU model and every thread setting. JSON:
``benchmarks/results/pretrained-encoders-<device>-<date>.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

from bench_stats import quartiles  # this script's folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("whisper_base", "wavlm_base")
SIDES = ("mmer_jax_xla", "mmer_jax_pallas", "torch_eager", "torch_compile")


# ----------------------------------------------------------------------------- child process
def _reference(name: str, batch: int, seconds: float, rng):
    """(transformers model in eval mode, its input as numpy, our input, our mask)."""
    import numpy as np
    import transformers

    if name == "whisper_base":
        frames = int(seconds * 100)  # 10-ms hop
        cfg = transformers.WhisperConfig(
            num_mel_bins=80, d_model=512, encoder_layers=6, encoder_attention_heads=8,
            encoder_ffn_dim=2048, decoder_layers=1, decoder_attention_heads=8,
            decoder_ffn_dim=2048, max_source_positions=frames // 2, vocab_size=64,
            pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
        model = transformers.WhisperModel(cfg).encoder
        x = rng.normal(size=(batch, 80, frames)).astype(np.float32)  # [B, n_mels, T]
        return model, cfg, x, x.transpose(0, 2, 1), np.ones((batch, frames), bool)
    if name == "wavlm_base":
        cfg = transformers.WavLMConfig()
        model = transformers.WavLMModel(cfg)
        x = rng.normal(size=(batch, int(seconds * 16000))).astype(np.float32)
        return model, cfg, x, x, np.ones(x.shape, bool)
    raise ValueError(f"unknown model {name!r} (known: {MODELS})")


def _sides(name: str, args, dev: str, notes: dict) -> dict:
    """{side: {"fwd": call, "fwd+bwd": call}} for one model, both frameworks on one weights."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from mmer_jax.weights import importer, store

    model, cfg, x_ref, x_ours, mask = _reference(name, args.batch, args.seconds,
                                                 np.random.default_rng(0))
    model = model.eval().to(dev)
    with tempfile.TemporaryDirectory() as tmp:
        ref = os.path.join(tmp, "reference")  # the import goes beside it, never inside
        model.save_pretrained(ref)
        if name == "whisper_base":  # our importer reads config.json's model_type
            cfg.to_json_file(os.path.join(ref, "config.json"))
        enc = store.load(importer.import_checkpoint("hf", ref, os.path.join(tmp, "enc")))
    xt = torch.from_numpy(x_ref).to(dev)
    params = jax.device_put(enc.variables["params"])
    x_j, m_j = jnp.asarray(x_ours), jnp.asarray(mask)

    def jax_side(impl):
        module = enc.module(implementation=impl)
        fwd = jax.jit(lambda p, x, m: module.apply({"params": p}, x, m).hidden_states[-1])

        def loss(p, x, m):
            return jnp.sum(module.apply({"params": p}, x, m).hidden_states[-1] ** 2)

        grad = jax.jit(jax.grad(loss))
        return {"fwd": lambda: jax.block_until_ready(fwd(params, x_j, m_j)),
                "fwd+bwd": lambda: jax.block_until_ready(grad(params, x_j, m_j))}

    def torch_side(mod):
        def sync():
            if dev == "cuda":
                torch.cuda.synchronize()

        def fwd():
            with torch.no_grad():
                mod(xt)
            sync()

        def fwd_bwd():
            for p in model.parameters():
                p.grad = None
            (mod(xt).last_hidden_state ** 2).sum().backward()
            sync()

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}

    wanted = set(args.sides.split(",")) if args.sides else set(SIDES)
    sides = {"mmer_jax_xla": jax_side("xla"), "torch_eager": torch_side(model)}
    if args.device == "gpu" and "mmer_jax_pallas" in wanted:
        sides["mmer_jax_pallas"] = jax_side("pallas")
    if "torch_compile" in wanted:
        try:
            sides["torch_compile"] = torch_side(torch.compile(model))
        except Exception as exc:  # noqa: BLE001 - recorded, the other sides still run
            notes[f"{name}/torch_compile"] = f"{type(exc).__name__}: {exc}"
    sides = {k: v for k, v in sides.items() if k in wanted | {"torch_eager"}}
    with torch.no_grad():
        ref_out = model(xt).last_hidden_state.cpu().numpy()
    ours_out = np.asarray(jax.jit(
        lambda p: enc.module().apply({"params": p}, x_j, m_j).hidden_states[-1])(params))
    notes[f"{name}/max_abs_diff_last_hidden_state"] = float(np.abs(ours_out - ref_out).max())
    return sides


def _child(args) -> dict:
    import jax
    import torch

    sys.path.insert(0, REPO)
    torch.set_num_threads(args.threads)
    dev = "cuda" if args.device == "gpu" else "cpu"
    rows, notes = [], {}
    for name in args.models.split(","):
        sides = _sides(name, args, dev, notes)
        for pas in ("fwd", "fwd+bwd"):
            calls = {}
            for side, fns in sides.items():
                try:
                    t0 = time.perf_counter()
                    fns[pas]()  # compile / warm-up
                    notes[f"{name}/{side}/{pas}/first_call_s"] = time.perf_counter() - t0
                    fns[pas]()
                    calls[side] = fns[pas]
                except Exception as exc:  # noqa: BLE001
                    notes[f"{name}/{side}/{pas}"] = f"{type(exc).__name__}: {exc}"
            times = {side: [] for side in calls}
            order = list(calls)
            for r in range(args.rounds):
                for side in order[r % len(order):] + order[: r % len(order)]:
                    t0 = time.perf_counter()
                    for _ in range(args.calls):
                        calls[side]()
                    times[side].append(1e3 * (time.perf_counter() - t0) / args.calls)
            base = statistics.median(times["torch_eager"]) if times.get("torch_eager") else None
            for side, ts in times.items():
                q = quartiles(ts)
                rows.append({"model": name, "pass": pas, "impl": side, "threads": args.threads,
                             "batch": args.batch, "seconds": args.seconds, "ms": q["median"],
                             "ms_iqr": q["iqr"], "rounds": ts,
                             "vs_torch_eager": base / q["median"] if base else None})
                print(f"[{args.threads} thr] {name:<13} {pas:<8} {side:<16} "
                      f"{q['median']:9.1f} ms (IQR {q['iqr']:.1f})", file=sys.stderr)
    env = {"jax": jax.__version__, "torch": torch.__version__,
           "transformers": __import__("transformers").__version__,
           "jax_device": str(jax.devices()[0]), "torch_threads": torch.get_num_threads(),
           "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
           else None, **{k: os.environ.get(k) for k in
                         ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "XLA_FLAGS")}}
    return {"rows": rows, "notes": notes, "environment": env}


# ----------------------------------------------------------------------------- parent
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 "
                   "and all cores on CPU; all on GPU)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=2, help="calls per side per round")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--sides", default=None, help=f"comma-separated subset of {','.join(SIDES)} "
                   "(torch_eager, the ratios' base, always runs); default: all")
    p.add_argument("--quick", action="store_true", help="1 round, 1 call, batch 2, 1 s")
    p.add_argument("--out", default=None)
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="check the arguments and that both sides import, then exit")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.dry_run:
        import torch  # noqa: F401
        import transformers  # noqa: F401

        sys.path.insert(0, REPO)
        from mmer_jax.weights import importer  # noqa: F401

        unknown = set((args.sides or "").split(",")) - set(SIDES) - {""}
        unknown |= set(args.models.split(",")) - set(MODELS)
        if unknown:
            p.error(f"unknown sides or models: {sorted(unknown)}")
        print("dry run: arguments and imports ok")
        return 0
    if args.quick:
        args.rounds, args.calls, args.batch, args.seconds = 1, 1, 2, 1.0
    if args.child:
        args.threads = int(args.threads)
        print(json.dumps(_child(args)))
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    counts = [int(t) for t in args.threads.split(",")] if args.threads else (
        [1, cores] if args.device == "cpu" and cores > 1 else [cores])
    result = {"what": "pretrained-encoders", "device": args.device, "cpu": _cpu_model(),
              "cores": cores, "date": datetime.date.today().isoformat(),
              "settings": {k: getattr(args, k) for k in ("models", "rounds", "calls", "batch",
                                                         "seconds")},
              "method": __doc__.split("Method: ", 1)[1].split("JSON:")[0].strip(),
              "runs": []}
    for n in counts:
        env = dict(os.environ, OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n),
                   OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
        if args.device == "cpu":
            env["JAX_PLATFORMS"] = "cpu"
            env["CUDA_VISIBLE_DEVICES"] = ""
            if n == 1:
                env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                    "intra_op_parallelism_threads=1")
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--threads", str(n),
               "--models", args.models, "--rounds", str(args.rounds), "--calls",
               str(args.calls), "--batch", str(args.batch), "--seconds", str(args.seconds),
               "--device", args.device] + (["--sides", args.sides] if args.sides else [])
        pin = ["taskset", "-c", f"0-{n - 1}"] if args.device == "cpu" and n < cores else []
        load_before = os.getloadavg()
        proc = subprocess.run(pin + cmd, env=env, stdout=subprocess.PIPE, text=True)
        run = {"threads": n, "pinned_cores": f"0-{n - 1}" if pin else "all",
               "load_before": load_before, "load_after": os.getloadavg(),
               "returncode": proc.returncode}
        try:
            run.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        except (IndexError, ValueError):
            run["error"] = traceback.format_exc(limit=1) + proc.stdout[-2000:]
        result["runs"].append(run)
    out = args.out or os.path.join(REPO, "benchmarks", "results",
                                   f"pretrained-encoders-{args.device}-{result['date']}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(out)
    return 0 if all(r.get("returncode") == 0 for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
