"""Serving latency and a loopback load test of ``mmer serve`` (a benchmark, not a test).

    python benchmarks/serve_latency.py --workdir RUN [--out benchmarks/results/serve-cpu.json]

Starts the real app under uvicorn on 127.0.0.1 (predictor loaded and warmed up first, as
``mmer serve`` does), writes a 3-second clip of the run's test split layout (audio + frames as a
lossless AVI, the transcript as the ``text`` field), then measures:

- the first request after start-up and the next ``--requests`` sequential ones (p50/p95 ms);
- a load test: ``--clients`` threads posting for ``--seconds``, below the queue limit
  (throughput, failed requests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _clip(path: str, settings) -> None:
    from tests.serve.media import write_avi

    rng = np.random.default_rng(0)
    sr = settings.sample_rate
    t = np.arange(3 * sr) / sr
    pcm = (np.sin(2 * np.pi * 220 * t) * 6000 + rng.standard_normal(t.size) * 800).astype(np.int16)
    frames = None
    if settings.frame_size:
        h, w = settings.frame_size
        frames = rng.integers(0, 255, (24, h, w, 3), dtype=np.uint8)  # 3 s at 8 fps
    write_avi(path, frames, pcm, sr)


def _pct(xs, q):
    return round(float(np.percentile(np.asarray(xs) * 1000, q)), 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import httpx
    import jax

    from mmer_jax.serve.app import create_app
    from mmer_jax.serve.predictor import Predictor
    from tests.serve.conftest import running_server

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    predictor = Predictor(args.workdir)
    load_s = time.perf_counter() - t0
    warm_s = predictor.warmup()
    tmp = tempfile.mkdtemp()
    clip = os.path.join(tmp, "clip3s.avi")
    _clip(clip, predictor.settings)
    data = open(clip, "rb").read()
    text = "they knock on the door at the wedding"
    queue = 2 * args.clients
    # Every load client posts from 127.0.0.1: the per-address limit must not be what is measured.
    app = create_app(predictor, max_concurrency=2, max_queue=queue,
                     max_per_client=args.clients + 2)

    def post(client):
        t = time.perf_counter()
        r = client.post("/predict", files={"file": ("clip3s.avi", data)}, data={"text": text},
                        timeout=60)
        return r.status_code, time.perf_counter() - t

    with running_server(app) as url:
        with httpx.Client(base_url=url) as c:
            first_code, first = post(c)
            seq = [post(c) for _ in range(args.requests)]
        codes = []
        lat = []
        stop = time.perf_counter() + args.seconds

        def worker():
            with httpx.Client(base_url=url) as c:
                while time.perf_counter() < stop:
                    code, s = post(c)
                    codes.append(code)
                    lat.append(s)

        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        t_load = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        load_wall = time.perf_counter() - t_load
    rest = [s for _, s in seq]
    result = {
        "what": "mmer serve: POST /predict of a 3 s AVI clip (audio + frames) + transcript",
        "run": {"workdir": os.path.abspath(args.workdir), "variant": predictor.variant,
                "modalities": predictor.modalities, "compiled_shapes": len(predictor.warm_shapes)},
        "environment": {"jax": jax.__version__, "device": jax.devices()[0].platform,
                        "device_kind": jax.devices()[0].device_kind, "cpus": os.cpu_count(),
                        "machine": platform.machine(), "python": platform.python_version()},
        "startup": {"load_s": round(load_s, 2), "warmup_compile_s": round(warm_s, 2)},
        "first_request_ms": round(first * 1000, 2),
        "first_request_status": first_code,
        "sequential": {"requests": len(rest), "p50_ms": _pct(rest, 50), "p95_ms": _pct(rest, 95),
                       "max_ms": _pct(rest, 100),
                       "non_200": sum(c != 200 for c, _ in seq)},
        "load": {"clients": args.clients, "max_concurrency": 2, "max_queue": queue,
                 "seconds": round(load_wall, 2), "requests": len(codes),
                 "requests_per_s": round(len(codes) / load_wall, 2),
                 "failed": sum(c != 200 for c in codes),
                 "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95)},
        "load_average_before": [round(x, 2) for x in load_before] if load_before else None,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
