"""Fixtures of the serving tests: one tiny trained run (1 epoch, fused variant), its predictor,
clips written from its test split, and a real uvicorn server on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import numpy as np
import pytest

from .media import write_avi


def _tiny_run_config(data_dir: str):
    from ..train.helpers import only_variant, tiny_config

    # One audio and one token bucket (bucket = cap), so every input has one padded shape: the
    # server compiles once and the eval batches have the predictor's shapes.
    cfg = tiny_config(data_dir, **{"train.epochs": 1, "train.batch_size": 16,
                                   "data.audio_bucket_s": 1.5, "data.token_bucket": 16})
    return only_variant(cfg, "fused", ["audio", "frames", "text"])


@pytest.fixture(scope="session")
def serve_run(tiny_generated, tmp_path_factory) -> str:
    from mmer_jax.train.run import run

    workdir = str(tmp_path_factory.mktemp("serve_run"))
    run(_tiny_run_config(tiny_generated), workdir)
    return workdir


@pytest.fixture(scope="session")
def predictor(serve_run):
    from mmer_jax.serve.predictor import Predictor

    p = Predictor(serve_run)
    p.warmup()
    return p


@pytest.fixture(scope="session")
def test_records(serve_run):
    """The test split's stored records (the tiny corpus), in index order."""
    from mmer_jax.data.sources import open_builder
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.train.evaluate import load_run_config

    data = from_section(DataConfig, load_run_config(serve_run).data, "data")
    src = open_builder(data).as_data_source("test")
    return [src[i] for i in range(len(src))]


@pytest.fixture(scope="session")
def clips(test_records, tmp_path_factory) -> dict:
    """``{"avi": path, "text": transcript, "record": record}`` of test record 0, and a long clip
    (records 0-2 back to back)."""
    d = tmp_path_factory.mktemp("clips")
    r = test_records[0]
    long_pcm = np.concatenate([x["audio"] for x in test_records[:3]])
    long_frames = np.concatenate([x["frames"] for x in test_records[:3]])
    return {
        "avi": write_avi(d / "clip0.avi", r["frames"], r["audio"]),
        "text": r["text"].decode(),
        "record": r,
        "long": write_avi(d / "long.avi", long_frames, long_pcm),
        "dir": d,
    }


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(app, max_size: int = 1 << 20):
    """Serves ``app`` with uvicorn on 127.0.0.1 in a thread; yields the base URL; shuts down."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            ws_max_size=max_size)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


LIMIT = 1 << 20  # the test server's upload limit: 1 MiB


@pytest.fixture(scope="session")
def server(predictor):
    from mmer_jax.serve.app import create_app

    app = create_app(predictor, max_upload_bytes=LIMIT, max_concurrency=1, max_queue=4)
    with running_server(app, LIMIT) as url:
        yield url
