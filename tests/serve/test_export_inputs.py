"""The exported model is a function of the model's real inputs (issue 33): no label or weight
inputs, `ExportedModel.predict` does the training path's host preprocessing, and README.md's
calling example runs and agrees with the training path."""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(predictor, tmp_path_factory):
    from mmer_jax.serve.export import export_run, load_exported

    out = tmp_path_factory.mktemp("export") / "exported" / "quickstart"
    export_run(predictor, str(out))
    return out, load_exported(str(out))


def test_functions_take_the_real_inputs_only(exported):
    out, model = exported
    meta = json.loads((out / "model.json").read_text())
    assert meta["format"] == "mmer-export/2"
    for fn in meta["functions"]:
        assert set(fn["inputs"]) == {"audio_pcm", "audio_len", "frames_u8", "frames_len",
                                     "tokens"}
    assert meta["inputs"]["audio_pcm"].startswith("int16 [B, T] mono PCM at features.sample_rate")
    assert all(meta["inputs"].values())  # every input says what it is


def _as_given(rec):
    return {"audio": [rec["audio"]], "frames": [rec["frames"]], "text": [rec["text"].decode()]}


def test_predict_equals_the_training_path(exported, predictor, test_records):
    """The issue's example (a test clip with its transcript) and variants: no transcript, no
    video, a clip longer than max_audio_s (centre window) with more words than max_tokens, and
    float PCM."""
    _, model = exported
    for rec in test_records[:3]:
        want = predictor.predict_records([rec])
        np.testing.assert_allclose(model.predict(**_as_given(rec)), want, atol=1e-5)
    rec = test_records[0]
    no_text = dict(rec, text=b"")
    np.testing.assert_allclose(model.predict(audio=[rec["audio"]], frames=[rec["frames"]]),
                               predictor.predict_records([no_text]), atol=1e-5)
    no_video = dict(rec, frames=np.zeros((0, *rec["frames"].shape[1:]), np.uint8))
    np.testing.assert_allclose(model.predict(audio=[rec["audio"]], text=[rec["text"].decode()]),
                               predictor.predict_records([no_video]), atol=1e-5)
    long = dict(rec, audio=np.concatenate([r["audio"] for r in test_records[:3]]),
                text=b" ".join(r["text"] for r in test_records[:6]))
    assert len(long["audio"]) > model.features["max_audio_s"] * model.features["sample_rate"]
    assert len(long["text"].split()) > model.features["max_tokens"]
    np.testing.assert_allclose(model.predict(**_as_given(long)),
                               predictor.predict_records([long]), atol=1e-5)
    as_float = model.predict(audio=[rec["audio"] / 32767.0], frames=[rec["frames"]],
                             text=[rec["text"].decode()])
    np.testing.assert_allclose(as_float, predictor.predict_records([rec]), atol=1e-5)
    # Several examples in one call: one row each, in order.
    both = model.predict(audio=[r["audio"] for r in test_records[:2]],
                         frames=[r["frames"] for r in test_records[:2]],
                         text=[r["text"].decode() for r in test_records[:2]])
    np.testing.assert_allclose(both, predictor.predict_records(test_records[:2]), atol=1e-5)


def test_bad_inputs_are_named(exported, test_records):
    _, model = exported
    rec = test_records[0]
    with pytest.raises(ValueError, match="lists differ in length"):
        model.predict(audio=[rec["audio"]], text=["a", "b"])
    with pytest.raises(ValueError, match=r"frames: expected uint8 \[F, "):
        model.predict(frames=[rec["frames"][..., 0]])
    with pytest.raises(ValueError, match="audio: expected 1-D mono PCM"):
        model.predict(audio=[np.zeros((10, 2), np.int16)])


def test_the_tokenizer_copy_agrees_with_the_training_one():
    from mmer_jax.data.text import split_words
    from mmer_jax.serve.export import _split_words

    for text in ("We got the HOUSE!", "don’t “quote” me", "a,b;c 3.5 ‚x‛ ″y″", ""):
        assert _split_words(text) == split_words(text)


def _readme_example() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- BEGIN example:export -->\n```python\n(.*?)```\n"
                      r"<!-- END example:export -->", text, re.S)
    assert block, "README.md lost its export example"
    return block.group(1)


def test_readme_example_runs_and_agrees(exported, predictor, test_records, tmp_path,
                                        monkeypatch, capsys):
    """README.md's example, as written, in a folder holding exported/quickstart and a
    speech.wav (at 22,050 Hz, so its resampling branch runs)."""
    sf = pytest.importorskip("soundfile")
    librosa = pytest.importorskip("librosa")
    out, model = exported
    monkeypatch.chdir(out.parent.parent)
    pcm16k = test_records[1]["audio"].astype(np.float32) / 32767.0
    wav = librosa.resample(pcm16k, orig_sr=16000, target_sr=22050)
    sf.write("speech.wav", wav, 22050, subtype="FLOAT")
    exec(compile(_readme_example(), "README.md:example:export", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    got = ast.literal_eval(printed)  # the example prints a dict of class -> probability
    assert list(got) == model.classes
    # Clean values, as printed: at most 3 decimals (float32's .tolist() printed 0.19300000369...).
    assert all(len(repr(v).split(".")[-1]) <= 3 for v in got.values()), printed
    # The same PCM through the training path (Corpus.example + collate + eval step).
    back = librosa.resample(sf.read("speech.wav", dtype="float32")[0], orig_sr=22050,
                            target_sr=16000)
    rec = {"label": 0, "audio": np.round(np.clip(back, -1, 1) * 32767).astype(np.int16),
           "frames": np.zeros((0, *model.features["frame_size"], 3), np.uint8),
           "text": "we got the house"}
    want = predictor.predict_records([rec])[0]
    np.testing.assert_allclose([got[c] for c in model.classes], want, atol=2e-3)  # round(3)
