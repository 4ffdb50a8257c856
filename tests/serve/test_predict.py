"""The predictor: one prediction through every door (Predictor, `mmer predict`, the exported
artefact, the eval step), windows, missing modalities and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .media import write_wav

# Every test here reads the tiny trained run (trained and compiled once per test session: ~30 s
# on an idle 2-core CPU), so the cross-path equality runs in the default suite.


def _probs(result, classes):
    return np.array([result["probabilities"][c] for c in classes])


def test_same_prediction_predict_export_eval(predictor, serve_run, clips, test_records,
                                             tmp_path, capsys):
    from mmer_jax import cli
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.serve.export import export_run, load_exported
    from mmer_jax.train import sharding as sh
    from mmer_jax.train.evaluate import load_run_config
    from mmer_jax.train.loop import VariantTrainer
    from mmer_jax.train.run import config_for_variant

    classes = predictor.classes
    direct = predictor.predict_file(clips["avi"], clips["text"])
    assert direct["modalities"] == {"used": ["audio", "frames", "text"], "missing": {}}
    p_direct = _probs(direct, classes)
    assert p_direct.sum() == pytest.approx(1.0, abs=1e-5)

    # `mmer predict --json`: a fresh predictor in the CLI, same numbers.
    assert cli.main(["predict", "--workdir", serve_run, clips["avi"], "--text", clips["text"],
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(_probs(out["results"][0], classes), p_direct, atol=1e-6)

    # The exported artefact, loaded without the config machinery, on the predictor's batch.
    export_run(predictor, str(tmp_path / "export"))
    exported = load_exported(str(tmp_path / "export"))
    assert exported.classes == classes
    decoded = predictor.decode(clips["avi"], clips["text"])
    from mmer_jax.serve.inputs import records

    (batch, n), = predictor.host_batches([r for _, _, r in records(decoded, predictor.settings)])
    np.testing.assert_allclose(exported(batch)[:n][0], p_direct, atol=1e-5)

    # `mmer eval`'s code path: the run's VariantTrainer and its eval step on the test split.
    cfg = load_run_config(serve_run)
    pipeline = make_pipeline(cfg.data, ["audio", "frames", "text"], cfg.seed, serve_run)
    trainer = VariantTrainer(config_for_variant(cfg, "fused"), pipeline, "fused",
                             ["audio", "frames", "text"], serve_run, mesh=sh.make_mesh(1))
    best, _ = trainer.restore("best")
    host = next(iter(trainer.batches("test")))
    eval_probs = np.asarray(sh.to_host(trainer.eval_step(
        best.params, best.batch_stats, sh.to_global(host, trainer.mesh))["probs"]))
    np.testing.assert_allclose(eval_probs[0], p_direct, atol=1e-5)  # test record 0 = the clip
    # ... and the whole split: the predictor's labels give evaluate()'s accuracy.
    metrics = trainer.evaluate(best.params, best.batch_stats, "test")
    pred = predictor.predict_records(test_records).argmax(-1)
    labels = np.array([r["label"] for r in test_records])
    assert float((pred == labels).mean()) == pytest.approx(metrics["accuracy"], abs=1e-9)
    np.testing.assert_allclose(predictor.predict_records(test_records), eval_probs[:len(labels)],
                               atol=1e-5)
    trainer.ckpt.close()


def test_windows_timeline(predictor, clips):
    res = predictor.predict_file(clips["long"], clips["text"], window_s=1.0, hop_s=0.5)
    dur = res["duration_s"]
    assert dur > 2.5
    starts = [w["start"] for w in res["windows"]]
    assert starts[:3] == [0.0, 0.5, 1.0] and len(starts) == int(np.ceil((dur - 1.0) / 0.5)) + 1
    assert res["windows"][-1]["end"] == pytest.approx(dur, abs=1e-3)
    for w in res["windows"]:
        assert sum(w["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    mean = np.mean([_probs(w, predictor.classes) for w in res["windows"]], 0)
    np.testing.assert_allclose(_probs(res, predictor.classes), mean, atol=1e-6)


def test_missing_modalities_reported(predictor, clips, tmp_path):
    wav = write_wav(tmp_path / "a.wav", clips["record"]["audio"])
    res = predictor.predict_file(wav)
    assert res["modalities"]["used"] == ["audio"]
    assert set(res["modalities"]["missing"]) == {"frames", "text"}
    txt = tmp_path / "t.txt"
    txt.write_text(clips["text"])
    res = predictor.predict_file(str(txt))
    assert res["modalities"]["used"] == ["text"]


def test_bad_inputs_clear_messages(predictor, clips, tmp_path):
    from mmer_jax.serve.inputs import InputError, UnsupportedMedia

    with pytest.raises(UnsupportedMedia, match="unsupported file type '.xyz'"):
        predictor.predict_file(str(tmp_path / "x.xyz"))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk" * 10)
    with pytest.raises(InputError, match="bad.wav"):
        predictor.predict_file(str(bad))
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000, np.int16))
    with pytest.raises(InputError, match="silent"):
        predictor.predict_file(silent)
    res = predictor.predict_file(silent, text=clips["text"])  # text still usable
    assert "silent" in res["modalities"]["missing"]["audio"]


def test_startup_compiles_every_bucket(predictor):
    assert predictor.warm_shapes == predictor.bucket_shapes() == [{"audio": 24000, "tokens": 16}]


def test_whole_file_covers_a_long_recording(predictor, test_records, tmp_path):
    """Issue 32 kind 2's example: a 60-s recording scored whole is scored everywhere (it was only
    its centre data.max_audio_s): silencing all but the centre changes the prediction, and the
    result says what was scored."""
    pcm = np.concatenate([r["audio"] for r in test_records] * 60)[:60 * 16000]
    assert len(pcm) == 60 * 16000
    quiet = np.zeros_like(pcm)
    w = int(predictor.data.max_audio_s * 16000)
    quiet[len(pcm) // 2 - w // 2 : len(pcm) // 2 + w // 2] = pcm[len(pcm) // 2 - w // 2 :
                                                                 len(pcm) // 2 + w // 2]
    full = predictor.predict_file(write_wav(tmp_path / "full.wav", pcm))
    centre = predictor.predict_file(write_wav(tmp_path / "centre.wav", quiet))
    n = int(np.ceil(60 / predictor.data.max_audio_s))
    assert len(full["windows"]) == n and f"as {n} evenly spaced windows" in full["scored"]
    assert full["windows"][0]["start"] == 0.0 and full["windows"][-1]["end"] == 60.0
    assert not np.allclose(_probs(full, predictor.classes), _probs(centre, predictor.classes),
                           atol=1e-4)
    mean = np.mean([_probs(x, predictor.classes) for x in full["windows"]], 0)
    np.testing.assert_allclose(_probs(full, predictor.classes), mean, atol=1e-6)


def test_cli_pairs_a_transcript_with_its_clip(predictor, serve_run, clips, tmp_path, capsys):
    """Issue 33: `mmer predict clip.avi clip.txt` reads clip.txt as the clip's transcript (it was
    predicted on its own); variant: a .txt of another name is still predicted alone."""
    from mmer_jax import cli

    d = clips["dir"]
    (d / "clip0.txt").write_text(clips["text"])
    (d / "notes.txt").write_text(clips["text"])
    assert cli.main(["predict", "--workdir", serve_run, str(d / "clip0.avi"),
                     str(d / "clip0.txt"), str(d / "notes.txt"), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["file"] for r in results] == [f"{d / 'clip0.avi'} (+ clip0.txt)",
                                            str(d / "notes.txt")]
    assert results[0]["modalities"] == {"used": ["audio", "frames", "text"], "missing": {}}
    direct = predictor.predict_file(clips["avi"], clips["text"])
    np.testing.assert_allclose(_probs(results[0], predictor.classes),
                               _probs(direct, predictor.classes), atol=1e-6)
    assert results[1]["modalities"]["used"] == ["text"]
