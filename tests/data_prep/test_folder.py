"""The folder-of-labelled-audio builder: folder-name and manifest labels, speaker regex, classes
order from the config, speaker-grouped fold views; TurEV-DB as distributed (``shared_data``)."""

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep import folds  # noqa: E402
from data_prep.build import BuildError, build  # noqa: E402
from mmer_jax.data.pipeline import make_pipeline  # noqa: E402
from mmer_jax.errors import RunError  # noqa: E402
from mmer_jax.schema import DataConfig  # noqa: E402


def _spec(path: Path, **kw) -> str:
    spec = {"name": "mini", "classes": ["sad", "angry"], "labels": {"Wut": "angry"},
            "speaker_regex": r"^spk(?P<speaker>\d+)-"} | kw
    path.write_text(json.dumps(spec))
    return str(path)


def _folder_corpus(root: Path) -> None:
    for s in range(3):
        for j in range(2):
            fx.write_wav(root / "Wut" / f"spk{s}-{j}.wav", 0.05, 22050, freq=300 + 20 * s)
            fx.write_wav(root / "Sad" / f"spk{s}-{j}.wav", 0.05, 22050, freq=150 + 20 * s)
    fx.write_wav(root / "Happy" / "spk0-9.wav", 0.05, 16000)  # not a class: a counted skip
    fx.write_wav(root / "Sad" / "nobody.wav", 0.05, 16000)  # no speaker in the name: a skip


def test_labels_from_folder_names_and_loso_fold_views(tmp_path):
    root = tmp_path / "corpus"
    _folder_corpus(root)
    spec = _spec(tmp_path / "mini.json")
    b = build("folder", spec, str(tmp_path / "tfds"), str(root))
    assert b.info.features["label"].names == ["sad", "angry"]  # the config's order
    src = b.as_data_source("full")
    by_id = {ex["id"].decode(): ex for ex in (src[i] for i in range(len(src)))}
    assert len(by_id) == 12
    assert by_id["Wut/spk1-0"]["label"] == 1 and by_id["Sad/spk2-1"]["label"] == 0
    assert by_id["Wut/spk1-0"]["speaker"] == b"1"
    rep = json.loads((Path(b.data_dir) / "build_report.json").read_text())
    reasons = sorted(s["reason"] for s in rep["skipped"]["unassigned"])
    assert "label 'Happy' is not one of the classes" in reasons[1]
    assert "speaker_regex" in reasons[0]
    assert folds.protocols_of(b.data_dir) == {"loso": 3}
    assert rep["notes"]["folds"]["loso"]["speakers"][0] == {
        "train": ["2"], "validation": ["1"], "test": ["0"]}
    data = DataConfig(corpus="folder", config=spec, data_dir=str(tmp_path / "tfds"),
                      manual_dir=str(root), read_threads=0)
    for k, test_speaker in ((1, "0"), (3, "2")):
        p = make_pipeline(data.__class__(**{**data.__dict__, "fold": k}), ["audio"], seed=0)
        assert p.split_speakers["test"] == [test_speaker] and p.num_examples("test") == 4
        assert "loso fold" in p.split_description
    with pytest.raises(RunError, match="set data.fold=1..K"):
        make_pipeline(data, ["audio"], seed=0)


def test_manifest_labels_speakers_and_official_split(tmp_path):
    root = tmp_path / "corpus"
    rows = []
    for s, split in ((0, "train"), (1, "train"), (2, "dev"), (3, "test")):
        for j, label in enumerate(("sad", "Wut")):
            rel = f"clips/c{s}{j}.flac"
            fx.write_wav(root / "tmp.wav", 0.05, 16000, freq=200 + 30 * s + 10 * j)
            import soundfile as sf

            x, sr = sf.read(root / "tmp.wav", dtype="int16")
            (root / "clips").mkdir(exist_ok=True)
            sf.write(root / rel, x, sr)
            rows.append({"path": rel, "label": label, "speaker": f"p{s}", "split": split})
    (root / "tmp.wav").unlink()
    (root / "labels.json").write_text(json.dumps(rows))
    spec = _spec(tmp_path / "m.json", name="manifested", manifest="labels.json")
    b = build("folder", spec, str(tmp_path / "tfds"), str(root))
    assert sorted(b.info.splits.keys()) == ["test", "train", "validation"]
    assert len(b.as_data_source("train")) == 4
    assert set(folds.protocols_of(b.data_dir)) == {"loso", "official"}


def test_bad_spec_is_named(tmp_path):
    with pytest.raises(BuildError, match="'classes'"):
        build("folder", _spec(tmp_path / "x.json", classes=[]), str(tmp_path / "t"),
              str(tmp_path))


@pytest.fixture
def turev(shared_data):
    path = shared_data / "turev_db"
    if not (path / "Sound Source").is_dir():
        pytest.skip(f"real TurEV-DB copy not at {path}")
    return path


def test_turev_db_as_distributed(turev, tmp_path):
    """The real layout and files (3 per speaker and emotion, copied): labels from the folders,
    speakers from the names, 6 leave-one-speaker-out folds."""
    root = tmp_path / "turev"
    by = {}
    for wav in sorted((turev / "Sound Source").glob("*/*.wav")):
        key = (wav.parent.name, wav.name.split("_")[0])
        if len(by.setdefault(key, [])) < 3:
            by[key].append(wav)
            dst = root / "Sound Source" / wav.parent.name / wav.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(wav, dst)
    b = build("folder", "turev_db", str(tmp_path / "tfds"), str(root))
    assert b.info.features["label"].names == ["angry", "calm", "happy", "sad"]
    rep = json.loads((Path(b.data_dir) / "build_report.json").read_text())
    assert rep["skipped_total"] == 0
    full = rep["splits"]["full"]
    # Speaker 1157 recorded only Angry and Sad (README: 150 files).
    assert full["count"] == 66 and full["orig_sample_rates"] == {"44100": 66}
    assert full["per_speaker"] == {"1157": 6, "1234": 12, "1358": 12, "1984": 12, "6783": 12,
                                   "7895": 12}
    assert full["per_class"] == {"angry": 18, "calm": 15, "happy": 15, "sad": 18}
    assert folds.protocols_of(b.data_dir) == {"loso": 6}
    tests = [f["test"] for f in rep["notes"]["folds"]["loso"]["speakers"]]
    assert tests == [["1157"], ["1234"], ["1358"], ["1984"], ["6783"], ["7895"]]
