"""Issue 32, kind 3 (hostile or careless input to predict and serve) on a real uvicorn on
loopback with the stub predictor (real decoding, fixed probabilities): windows and hops out of
range, inputs that decode to hours, slow uploads, and a bounded load test mixing them with normal
traffic. Seconds each."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest

from .conftest import LIMIT, running_server
from .media import write_wav
from .test_server import StubPredictor


@pytest.fixture(scope="module")
def media_files(tmp_path_factory):
    """A 1-s tone, a FLAC of 1 h of silence at 48 kHz (~0.55 MB: its header says 3600 s) and the
    same FLAC with the header's length zeroed ("unknown", as streaming encoders leave it)."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    tone = write_wav(d / "tone.wav", (rng.standard_normal(16000) * 3000).astype(np.int16))
    hour = str(d / "hour.flac")
    with sf.SoundFile(hour, "w", 48000, 1, subtype="PCM_16") as f:
        block = np.zeros(48000 * 60, np.int16)
        for _ in range(60):
            f.write(block)
    raw = bytearray(open(hour, "rb").read())
    raw[21] &= 0xF0  # STREAMINFO's 36-bit total-samples field (bytes 21-25) -> 0 = unknown
    raw[22:26] = bytes(4)
    unknown = str(d / "unknown_length.flac")
    with open(unknown, "wb") as f:
        f.write(raw)
    assert os.path.getsize(hour) < LIMIT  # small enough to upload
    return {"tone": tone, "hour": hour, "unknown": unknown}


def _app(**kw):
    from mmer_jax.serve.app import create_app

    delay = kw.pop("delay", 0.0)
    opts = dict(max_upload_bytes=LIMIT, max_duration_s=60.0, max_windows=16)
    opts.update(kw)
    return create_app(StubPredictor(delay=delay), **opts)


@pytest.fixture(scope="module")
def server():
    with running_server(_app()) as url:
        yield url


def _post(url, path, data=None, name=None, local="127.0.0.1", timeout=30):
    import httpx

    with httpx.Client(transport=httpx.HTTPTransport(local_address=local), timeout=timeout) as c:
        with open(path, "rb") as f:
            return c.post(url + "/predict", files={"file": (name or os.path.basename(path), f)},
                          data=data or {})


@pytest.mark.parametrize("fields,reason", [
    ({"window": "inf"}, "window must be a finite number of seconds in [0.1, 3600], got inf"),
    ({"window": "1", "hop": "inf"}, "hop must be a finite number"),
    ({"window": "nan"}, "got nan"),
    ({"window": "1e-300"}, "got 1e-300"),
    ({"window": "1", "hop": "0.001"}, "hop must be a finite number of seconds in [0.05"),
    ({"window": "0.1", "hop": "0.05"}, "gives 19 windows, more than the limit of 16"),
    ({"hop": "1"}, "'hop' needs 'window'"),
])
def test_window_and_hop_out_of_range_get_400(server, media_files, fields, reason):
    t0 = time.perf_counter()
    r = _post(server, media_files["tone"], fields)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]
    assert time.perf_counter() - t0 < 5  # refused, not computed


def test_window_in_range_is_served(server, media_files):
    r = _post(server, media_files["tone"], {"window": "0.5", "hop": "0.25"})
    assert r.status_code == 200, r.text


def test_hour_long_flac_refused_from_its_header(server, media_files):
    """The issue's example: a 0.55-MB FLAC holding 1 h at 48 kHz."""
    t0 = time.perf_counter()
    r = _post(server, media_files["hour"])
    assert r.status_code == 413, r.text
    assert "hour.flac: 3600.0 s long, over the limit of 60 s" in r.json()["error"]
    assert "before decoding" in r.json()["error"]
    assert time.perf_counter() - t0 < 2


def test_unknown_length_flac_stopped_while_decoding(server, media_files):
    """Variant: the same hour with no length in its header: cut off at the limit."""
    r = _post(server, media_files["unknown"])
    assert r.status_code == 413, r.text
    assert "longer than the limit of 60 s (found while decoding)" in r.json()["error"]


def test_cli_refuses_long_files_and_bad_windows(media_files, tmp_path, capsys):
    from mmer_jax import cli

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    for argv, msg in (
        (["--window", "inf"], "--window must be a finite number of seconds"),
        (["--window", "1e-300"], "got 1e-300"),
        (["--window", "1", "--hop", "0.001"], "--hop must be a finite number"),
        (["--max-duration", "nan"], "--max-duration must be a finite number"),
    ):
        assert cli.main(["predict", "--workdir", str(run), media_files["tone"], *argv]) == 2
        assert msg in capsys.readouterr().err


def _slow_upload(url: str, local: str, seconds: float, out: list, byte_every: float = 0.5):
    """Sends a multipart header then one body byte every ``byte_every`` s; records the status."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.socket()
    s.bind((local, 0))
    s.settimeout(seconds + 5)
    try:
        s.connect((host, int(port)))
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                  b"boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n")
        s.setblocking(False)
        end, reply = time.time() + seconds, b""
        while time.time() < end and not reply:
            try:
                reply = s.recv(200)
            except BlockingIOError:
                try:
                    s.send(b"x")
                except OSError:
                    break
                time.sleep(byte_every)
        out.append(int(reply.split()[1]) if reply.startswith(b"HTTP/1.1") else None)
    except OSError:
        out.append(None)
    finally:
        s.close()


def _rss_sampler(stop: threading.Event, samples: list):
    import psutil

    proc = psutil.Process()
    while not stop.is_set():
        samples.append(proc.memory_info().rss)
        time.sleep(0.05)


def _load(media_files, slow_addresses: list[str]):
    """12 slow uploads (from ``slow_addresses``), hour-long FLACs and normal requests at once,
    against the issue's default slots (2 running + 8 queued = 10 < 12 slow clients)."""
    app = _app(max_concurrency=2, max_queue=8, body_timeout_s=2.0, max_per_client=4,
               delay=0.05)
    slow, long_codes, normal, rss = [], [], [], []
    stop = threading.Event()
    with running_server(app) as url:
        sampler = threading.Thread(target=_rss_sampler, args=(stop, rss))
        sampler.start()
        threads = [threading.Thread(target=_slow_upload, args=(url, a, 6.0, slow))
                   for a in slow_addresses]
        threads += [threading.Thread(target=lambda p=p: long_codes.append(
            _post(url, media_files[p], local="127.0.0.4").status_code))
            for p in ("hour", "unknown", "hour", "unknown")]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the slow uploads are in
        for _ in range(6):
            t0 = time.perf_counter()
            r = _post(url, media_files["tone"], {"text": "hi"}, local="127.0.0.2")
            normal.append((r.status_code, time.perf_counter() - t0))
        for t in threads:
            t.join(15)
        stop.set()
        sampler.join()
    return slow, long_codes, normal, rss


def test_load_slow_clients_and_long_uploads_from_one_address(media_files):
    """The issue's example: twelve slow uploads from one client. Four are let in (and cut off at
    the body timeout: 408), eight get 429 at once; normal requests from another client are all
    answered while they trickle; the hour-long FLACs get 413; memory stays bounded."""
    slow, long_codes, normal, rss = _load(media_files, ["127.0.0.3"] * 12)
    assert sorted(slow) == [408] * 4 + [429] * 8, slow
    assert long_codes == [413] * 4
    assert [c for c, _ in normal] == [200] * 6 and max(t for _, t in normal) < 2.0, normal
    assert max(rss) - rss[0] < 200 << 20, (rss[0], max(rss))


def test_load_slow_clients_from_twelve_addresses(media_files):
    """Variant: the twelve slow uploads come from twelve addresses (the per-client limit does
    not apply): none takes a prediction slot, all are cut off at the body timeout, and normal
    requests are still answered."""
    slow, long_codes, normal, _ = _load(media_files, [f"127.0.0.{10 + i}" for i in range(12)])
    assert slow == [408] * 12, slow
    assert long_codes == [413] * 4
    assert [c for c, _ in normal] == [200] * 6 and max(t for _, t in normal) < 2.0, normal
