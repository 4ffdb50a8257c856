"""The HTTP server on a real uvicorn on 127.0.0.1: every status code, limits, temp files, the
WebSocket stream. Status-code tests use a stub predictor (real decoding, fixed probabilities) so
they run in seconds; the same-prediction tests use the tiny trained run (~30 s once)."""

from __future__ import annotations

import glob
import json
import os
import socket
import tempfile
import threading
import time

import numpy as np
import pytest

from .conftest import LIMIT, running_server
from .media import write_wav


class StubPredictor:
    """Decodes like the real one (audio + text model), answers fixed probabilities."""

    variant = "stub"
    classes = ["calm", "angry"]
    warm_shapes = [{"audio": 16000}]

    def __init__(self, delay: float = 0.0):
        from mmer_jax.serve.inputs import MediaSettings

        self.delay = delay
        self.settings = MediaSettings(modalities=("audio", "text"), sample_rate=16000,
                                      max_frames=4)

    def describe(self):
        return {"system": "stub", "classes": self.classes, "modalities": ["audio", "text"]}

    def decode(self, path, text=None, shown_name=None, window_s=None, hop_s=None, limits=None):
        from mmer_jax.serve.inputs import decode

        return decode(path, self.settings, text=text, shown_name=shown_name, window_s=window_s,
                      hop_s=hop_s, limits=limits)

    def predict_decoded(self, decoded, name=""):
        time.sleep(self.delay)
        return {"file": name, "label": "angry", "probabilities": {"calm": 0.25, "angry": 0.75},
                "modalities": {"used": [], "missing": decoded.missing}, "windows": [],
                "scored": decoded.coverage}


@pytest.fixture(scope="module")
def stub_server():
    from mmer_jax.serve.app import create_app

    with running_server(create_app(StubPredictor(), max_upload_bytes=LIMIT)) as url:
        yield url


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("wav")
    return write_wav(d / "tone.wav", (rng.standard_normal(16000) * 3000).astype(np.int16))


def _uploads_left() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "mmer-upload-*"))


def test_health_model_page(stub_server):
    import httpx

    assert httpx.get(stub_server + "/health").json()["status"] == "ok"
    assert httpx.get(stub_server + "/model").json()["classes"] == ["calm", "angry"]
    page = httpx.get(stub_server + "/")
    assert page.status_code == 200 and "getUserMedia" in page.text and "MediaRecorder" in page.text


def test_predict_ok_and_temp_removed(stub_server, wav):
    import httpx

    before = set(_uploads_left())
    with open(wav, "rb") as f:
        r = httpx.post(stub_server + "/predict", files={"file": ("../../etc/passwd.wav", f)},
                       data={"text": "hello"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "angry" and r.json()["file"] == "passwd.wav"
    assert set(_uploads_left()) <= before


def test_413_declared_length_refused_before_body(stub_server):
    host, port = stub_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                  b"boundary=b\r\nContent-Length: %d\r\n\r\n" % (LIMIT * 50))
        # No body byte is sent: the answer must come from the headers alone.
        reply = s.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "larger than the limit" in reply


def test_413_streamed_body_cut_off(stub_server):
    import httpx

    def body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
        for _ in range(4 * LIMIT // 65536):
            yield b"\0" * 65536

    r = httpx.post(stub_server + "/predict", content=body(),
                   headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413, r.text


def test_415_unknown_type_and_not_multipart(stub_server):
    import httpx

    r = httpx.post(stub_server + "/predict", files={"file": ("notes.xyz", b"abc")})
    assert r.status_code == 415 and "unsupported file type '.xyz'" in r.json()["error"]
    r = httpx.post(stub_server + "/predict", content=b"{}",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]


@pytest.mark.parametrize("files,data,reason", [
    ({"file": ("broken.wav", b"RIFF1234WAVEnot audio at all")}, {}, "broken.wav"),
    ({"file": ("empty.wav", b"")}, {}, "empty upload"),
    (None, {"text": "no file"}, "'file'"),
    ("silent", {}, "silent"),
    ("wav", {"window": "abc"}, "must be a number"),
])
def test_400_with_reason(stub_server, wav, tmp_path, files, data, reason):
    import httpx

    if files == "silent":
        files = {"file": ("quiet.wav", open(write_wav(tmp_path / "q.wav",
                                                      np.zeros(8000, np.int16)), "rb"))}
    elif files == "wav":
        files = {"file": ("tone.wav", open(wav, "rb"))}
    before = set(_uploads_left())
    r = httpx.post(stub_server + "/predict", files=files or {"x": ("x.txt", b"")}, data=data)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]
    assert tempfile.gettempdir() not in r.json()["error"]  # no server paths in messages
    assert set(_uploads_left()) <= before


def test_503_past_the_queue(wav):
    import httpx

    from mmer_jax.serve.app import create_app

    app = create_app(StubPredictor(delay=1.5), max_upload_bytes=LIMIT, max_concurrency=1,
                     max_queue=0)
    codes = []
    with running_server(app) as url:
        data = open(wav, "rb").read()

        def post():
            codes.append(httpx.post(url + "/predict", files={"file": ("a.wav", data)},
                                    timeout=30).status_code)

        first = threading.Thread(target=post)
        first.start()
        time.sleep(0.5)  # the first one holds the only slot
        post()
        first.join()
    assert sorted(codes) == [200, 503]


def test_websocket_stream(stub_server, wav):
    from websockets.sync.client import connect

    with connect(stub_server.replace("http", "ws") + "/stream") as ws:
        ws.send(json.dumps({"ext": ".wav", "text": "hi"}))
        assert json.loads(ws.recv())["ok"]
        for i in range(2):
            ws.send(open(wav, "rb").read())
            res = json.loads(ws.recv())
            assert "label" in res, res
            assert res["label"] == "angry" and res["index"] == i
        ws.send(b"garbage")
        assert "error" in json.loads(ws.recv())


def test_post_gives_the_predictor_probabilities(server, predictor, clips):
    import httpx

    with open(clips["avi"], "rb") as f:
        r = httpx.post(server + "/predict", files={"file": ("clip.avi", f)},
                       data={"text": clips["text"]}, timeout=60)
    assert r.status_code == 200, r.text
    direct = predictor.predict_file(clips["avi"], clips["text"])
    assert r.json()["probabilities"] == direct["probabilities"]
    assert r.json()["modalities"] == direct["modalities"]
    assert httpx.get(server + "/model").json()["classes"] == predictor.classes


def test_websocket_chunk_type_from_its_bytes(stub_server, wav, tmp_path):
    """Issue 33: /stream rejected a wav chunk (the type came only from the settings message,
    default .webm); a chunk now says what it is. Variant: a FLAC chunk after settings that say
    WebM."""
    import soundfile as sf
    from websockets.sync.client import connect

    flac = str(tmp_path / "c.flac")
    sf.write(flac, sf.read(wav, dtype="int16")[0], 16000)
    with connect(stub_server.replace("http", "ws") + "/stream") as ws:
        ws.send(open(wav, "rb").read())  # no settings message at all
        res = json.loads(ws.recv())
        assert res.get("label") == "angry", res
        ws.send(json.dumps({"ext": ".webm"}))
        assert json.loads(ws.recv())["ok"]
        ws.send(open(flac, "rb").read())
        assert json.loads(ws.recv()).get("label") == "angry"


def test_page_has_window_controls_and_clears_on_error(stub_server):
    import httpx

    page = httpx.get(stub_server + "/").text
    assert 'id="window"' in page and 'id="hop"' in page and 'fd.append("window"' in page
    # An error empties the label (it kept the large "…" placeholder).
    assert 'if(res.error){$("error").textContent=res.error;$("label").textContent="";' in page
