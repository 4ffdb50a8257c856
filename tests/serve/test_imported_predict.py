"""A run whose model holds an imported encoder (``ssl_finetune`` over a tiny random Whisper,
1 epoch on the tiny corpus) through ``mmer predict``, ``mmer export``, ``mmer eval`` and the
server, with the import directory moved away first: the run's config.json holds the import's
record and its checkpoints the grafted weights, so nothing outside the workdir is read. An
``ssl_probe`` run (encoder-feature cache, no audio path) is refused with one line saying what to
use instead."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from mmer_jax import cli
from mmer_jax import config as config_lib
from mmer_jax.errors import UsageError
from tests.pretrained import tiny_imports

from .conftest import running_server
from .media import write_wav


@pytest.fixture(scope="module")
def finetuned(tiny_generated, tmp_path_factory):
    """(workdir, the moved import's new place): the run trained, then its import moved."""
    from mmer_jax.train.run import run

    root = tmp_path_factory.mktemp("imported_run")
    encoder = tiny_imports.whisper(root / "imports")
    items = {"data.config": "tiny", "data.data_dir": tiny_generated, "data.read_threads": 0,
             "data.audio_bucket_s": 1.5, "model.audio.path": encoder, "train.epochs": 1,
             "train.batch_size": 16, "train.progress": False}
    cfg = config_lib.load("experiments/ssl_finetune_generated.py",
                          [f"{k}={v}" for k, v in items.items()])
    workdir = str(root / "run")
    run(cfg, workdir)
    moved = str(root / "moved-away")
    shutil.move(encoder, moved)
    return workdir, encoder


def test_predict_export_serve_without_the_import(finetuned, tmp_path, capsys):
    from mmer_jax.data.sources import open_builder
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.serve.export import load_exported
    from mmer_jax.serve.predictor import Predictor
    from mmer_jax.train.evaluate import load_run_config

    workdir, encoder = finetuned
    assert not os.path.exists(encoder)
    stored = load_run_config(workdir)
    record = json.loads(stored.model.audio.record)
    assert record["architecture"] == "whisper" and record["config"]["encoder_layers"] == 2

    data = from_section(DataConfig, stored.data, "data")
    rec = open_builder(data).as_data_source("test")[0]
    wav = write_wav(str(tmp_path / "clip.wav"), np.asarray(rec["audio"]))
    assert cli.main(["predict", "--workdir", workdir, wav, "--json"]) == 0
    probs = json.loads(capsys.readouterr().out)["results"][0]["probabilities"]
    predictor = Predictor(workdir)
    want = predictor.predict_records([rec])[0]
    np.testing.assert_allclose([probs[c] for c in predictor.classes], want, atol=1e-5)
    saved = json.load(open(os.path.join(workdir, "variants", "audio", "predictions_test.json")))
    np.testing.assert_allclose(saved["probs"][0], want, atol=1e-4)  # the run's own test pass

    out = str(tmp_path / "export")
    assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
    exported = load_exported(out)
    (batch, n), = predictor.host_batches([rec])
    np.testing.assert_allclose(exported(batch)[:n][0], want, atol=1e-5)
    assert exported.features["frontend"] == "whisper"

    from mmer_jax.train.evaluate import evaluate_run  # `mmer eval`: restores, reads no import

    scored = evaluate_run(workdir, "test")["audio"]["test"]
    results = json.load(open(os.path.join(workdir, "results.json")))
    assert scored["uar"] == pytest.approx(results["test"]["uar"])


def test_serve_without_the_import(finetuned, tmp_path):
    """Apart from ``capsys``: uvicorn's logging set-up closes absl's log stream when that is
    not the current ``sys.stderr``."""
    import httpx

    from mmer_jax.data.sources import open_builder
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.serve.app import create_app
    from mmer_jax.serve.prediction import open_predictor  # what `mmer serve` opens
    from mmer_jax.train.evaluate import load_run_config

    workdir, _ = finetuned
    predictor = open_predictor(workdir, None)
    assert predictor.warmup() > 0
    data = from_section(DataConfig, load_run_config(workdir).data, "data")
    rec = open_builder(data).as_data_source("test")[0]
    want = predictor.predict_records([rec])[0]
    wav = write_wav(str(tmp_path / "clip.wav"), np.asarray(rec["audio"]))
    with running_server(create_app(predictor, max_upload_bytes=1 << 20)) as url:
        with open(wav, "rb") as f:
            r = httpx.post(url + "/predict", files={"file": ("clip.wav", f)})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose([r.json()["probabilities"][c] for c in predictor.classes], want,
                               atol=1e-5)


def test_ssl_probe_run_is_refused(tmp_path):
    from mmer_jax.serve.predictor import Predictor
    from mmer_jax.train.run import CONFIG_FILE

    cfg = config_lib.load_config_file("experiments/ssl_probe_generated.py")
    cfg.data.encoder = str(tmp_path / "any-import")
    (tmp_path / CONFIG_FILE).write_text(cfg.to_json_best_effort())
    with pytest.raises(UsageError) as err:
        Predictor(str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "ssl_probe run on the encoder-feature cache" in msg
    assert "train ssl_finetune" in msg
