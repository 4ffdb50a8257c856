"""Hostile load on ``mmer serve`` and the memory of decoding long files (a benchmark, not a test).

    python benchmarks/serve_load.py [--out benchmarks/results/serve-load-cpu-DATE.json]

Issue 32 kind 3, at the issue's scale. Two parts:

1. **Load**: the real app under uvicorn in a child process (the CLI's limits: 2 predictions at
   once, 8 queued, 30-s body timeout, 4 requests per client address, 600-s duration limit), with
   a stub predictor that decodes every upload for real and answers fixed probabilities (the
   costs under attack are connections, bodies and decoding, not the model). Normal requests (a
   1-s WAV from 127.0.0.2, sequential) are timed alone, then while 12 slow uploads from one
   address and 12 from twelve addresses send one byte every 2 s and a loop of hostile uploads
   runs from 127.0.0.4 (a 0.55-MB FLAC holding 1 h at 48 kHz; the same with its length erased
   from the header; window=1e-300; window=1 with hop=0.001). Records every status code, the
   normal requests' latency (p50/p95/max) and the server process's RSS (sampled every 50 ms).
2. **Memory of one long file**: peak RSS of a fresh process that decodes a 1-h 48-kHz FLAC for
   an audio model at 16 kHz, (a) through ``mmer predict``'s path (:func:`mmer_jax.serve.inputs
   .decode` with the CLI's default limit: block-by-block reading and resampling) and (b) through
   the builders' whole-file ``read_audio`` (how predict read it before).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

_SERVER = """
import sys, time
sys.path.insert(0, {root!r})
from mmer_jax.serve.app import bind, create_app
from mmer_jax.serve.inputs import MediaSettings, decode
import uvicorn

class Stub:
    variant, classes, warm_shapes = "stub", ["calm", "angry"], []
    settings = MediaSettings(modalities=("audio", "text"), sample_rate=16000, max_frames=4,
                             max_audio_s=1.5)
    def describe(self):
        return {{"system": "stub", "classes": self.classes}}
    def decode(self, path, text=None, shown_name=None, window_s=None, hop_s=None, limits=None):
        return decode(path, self.settings, text=text, shown_name=shown_name, window_s=window_s,
                      hop_s=hop_s, limits=limits)
    def predict_decoded(self, decoded, name=""):
        return {{"file": name, "label": "angry", "probabilities": {{"calm": .25, "angry": .75}},
                "windows": len(decoded.spans)}}

sock = bind("127.0.0.1", {port})
app = create_app(Stub(), max_upload_bytes=32 << 20, max_concurrency=2, max_queue=8,
                 max_duration_s=600.0, max_windows=512, body_timeout_s={timeout},
                 max_per_client=4)
print("READY", flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
"""

_DECODE = """
import resource, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
if {bounded}:
    from mmer_jax.serve.inputs import Limits, MediaSettings, decode
    d = decode({path!r}, MediaSettings(("audio",), 16000, 4, max_audio_s=1.5),
               limits=Limits(max_duration_s=7200.0, max_windows=4096))
    n = len(d.audio)
else:
    from data_prep.decode import read_audio
    n = len(read_audio({path!r}, 16000)[0])
print(n, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_media(d: str) -> dict:
    import soundfile as sf

    from tests.serve.media import write_wav

    rng = np.random.default_rng(0)
    tone = write_wav(os.path.join(d, "tone.wav"),
                     (rng.standard_normal(16000) * 3000).astype(np.int16))
    hour = os.path.join(d, "hour.flac")
    with sf.SoundFile(hour, "w", 48000, 1, subtype="PCM_16") as f:
        block = np.zeros(48000 * 60, np.int16)
        for _ in range(60):
            f.write(block)
    raw = bytearray(open(hour, "rb").read())
    raw[21] &= 0xF0  # STREAMINFO total samples -> 0 ("unknown")
    raw[22:26] = bytes(4)
    unknown = os.path.join(d, "unknown.flac")
    with open(unknown, "wb") as f:
        f.write(raw)
    noisy = os.path.join(d, "hour_noise.flac")  # for the memory part: real content
    with sf.SoundFile(noisy, "w", 48000, 1, subtype="PCM_16") as f:
        for _ in range(60):
            f.write((rng.standard_normal(48000 * 60) * 3000).astype(np.int16))
    return {"tone": tone, "hour": hour, "unknown": unknown, "hour_noise": noisy,
            "hour_bytes": os.path.getsize(hour)}


def _post(url, path, fields=None, local="127.0.0.2", timeout=120):
    import httpx

    with httpx.Client(transport=httpx.HTTPTransport(local_address=local), timeout=timeout) as c:
        with open(path, "rb") as f:
            return c.post(url + "/predict", files={"file": (os.path.basename(path), f)},
                          data=fields or {})


def _slow(url, local, seconds, byte_every, out):
    host, port = url.removeprefix("http://").split(":")
    s = socket.socket()
    s.bind((local, 0))
    t0 = time.perf_counter()
    try:
        s.connect((host, int(port)))
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                  b"boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n")
        s.setblocking(False)
        reply = b""
        while time.perf_counter() - t0 < seconds and not reply:
            try:
                reply = s.recv(200)
            except BlockingIOError:
                try:
                    s.send(b"x")
                except OSError:
                    break
                time.sleep(byte_every)
        code = int(reply.split()[1]) if reply.startswith(b"HTTP/1.1") else None
        out.append({"code": code, "held_s": round(time.perf_counter() - t0, 1)})
    except OSError as exc:
        out.append({"code": None, "error": str(exc)})
    finally:
        s.close()


def _normal(url, media, n) -> tuple[list, list]:
    codes, lat = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        codes.append(_post(url, media["tone"], {"text": "hello"}).status_code)
        lat.append(time.perf_counter() - t0)
    return codes, lat


def _stats(lat) -> dict:
    ms = np.asarray(lat) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(float(ms.max()), 1)}


def load_part(media: dict, args) -> dict:
    import psutil

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", _SERVER.format(
        root=ROOT, port=port, timeout=args.body_timeout)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "READY"
        url = f"http://127.0.0.1:{port}"
        proc = psutil.Process(server.pid)
        _normal(url, media, 3)  # warm
        base_codes, base_lat = _normal(url, media, args.requests)
        rss, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                rss.append(proc.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        rss_before = proc.memory_info().rss
        slow_one, slow_many, hostile = [], [], []
        hold = args.body_timeout + 15
        threads = [threading.Thread(target=_slow, args=(url, "127.0.0.3", hold, 2.0, slow_one))
                   for _ in range(12)]
        threads += [threading.Thread(target=_slow, args=(url, f"127.0.0.{10 + i}", hold, 2.0,
                                                          slow_many)) for i in range(12)]
        attack_end = time.time() + args.body_timeout

        def hostile_loop():
            cases = [("hour", {}), ("unknown", {}), ("tone", {"window": "1e-300"}),
                     ("tone", {"window": "1", "hop": "0.001"})]
            while time.time() < attack_end:
                for name, fields in cases:
                    t0 = time.perf_counter()
                    r = _post(url, media[name], fields, local="127.0.0.4")
                    hostile.append({"case": name + (f" {fields}" if fields else ""),
                                    "code": r.status_code,
                                    "ms": round((time.perf_counter() - t0) * 1000, 1)})

        threads.append(threading.Thread(target=hostile_loop))
        for t in threads:
            t.start()
        time.sleep(1.0)
        codes, lat = _normal(url, media, args.requests)
        for t in threads:
            t.join()
        stop.set()
        sampler.join()
    finally:
        server.terminate()
        server.wait(10)

    def count(xs):
        out = {}
        for x in xs:
            out[str(x["code"])] = out.get(str(x["code"]), 0) + 1
        return out

    by_case = {}
    for h in hostile:
        c = by_case.setdefault(h["case"], {"codes": {}, "ms": []})
        c["codes"][str(h["code"])] = c["codes"].get(str(h["code"]), 0) + 1
        c["ms"].append(h["ms"])
    return {
        "server_limits": {"max_concurrency": 2, "max_queue": 8, "body_timeout_s":
                          args.body_timeout, "max_per_client": 4, "max_duration_s": 600,
                          "max_windows": 512, "max_upload_mb": 32},
        "normal_alone": {"codes": {str(c): base_codes.count(c) for c in set(base_codes)},
                         **_stats(base_lat)},
        "normal_under_attack": {"codes": {str(c): codes.count(c) for c in set(codes)},
                                **_stats(lat)},
        "slow_one_address": {"codes": count(slow_one),
                             "held_s_max": max(x.get("held_s", 0) for x in slow_one)},
        "slow_twelve_addresses": {"codes": count(slow_many),
                                  "held_s_max": max(x.get("held_s", 0) for x in slow_many)},
        "hostile_uploads": {k: {"codes": v["codes"], "p50_ms": float(np.median(v["ms"]))}
                            for k, v in by_case.items()},
        "hour_flac_bytes": media["hour_bytes"],
        "server_rss_mb": {"before_attack": round(rss_before / 2**20, 1),
                          "peak_during": round(max(rss) / 2**20, 1)},
    }


def memory_part(media: dict) -> dict:
    out = {}
    for name, bounded in (("predict_path_bounded", True), ("builders_whole_file", False)):
        r = subprocess.run([sys.executable, "-c", _DECODE.format(
            root=ROOT, path=media["hour_noise"], bounded=bounded)], capture_output=True,
            text=True, check=True)
        n, secs, peak = r.stdout.split()
        out[name] = {"samples_16k": int(n), "seconds": round(float(secs), 1),
                     "peak_rss_mb": round(int(peak) / 2**20, 1)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--body-timeout", type=float, default=30.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmer-load-") as d:
        media = _write_media(d)
        result = {
            "benchmark": "serve_load", "date": datetime.date.today().isoformat(),
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "loadavg_at_start": os.getloadavg()},
            "load": load_part(media, args),
            "decode_1h_48k_flac": memory_part(media),
        }
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
