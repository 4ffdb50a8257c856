"""EmoDB builder: a synthetic fixture in the real layout, and the real copy (``shared_data``)."""

import collections
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep._common.report import CorpusError  # noqa: E402
from data_prep._common.speakers import carve  # noqa: E402
from data_prep.emodb import emodb  # noqa: E402

LETTERS = "WLEAFTN"


@pytest.fixture
def real(shared_data):
    """The real EmoDB copy, ``<data root>/emodb``."""
    path = shared_data / "emodb"
    if not path.is_dir():
        pytest.skip(f"real EmoDB copy not at {path}")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """10 speakers × 2 utterances at 22,050 Hz, plus one file of each bad kind."""
    root = tmp_path_factory.mktemp("emodb")
    wav = root / "wav"
    stems = []
    for i, spk in enumerate(emodb.SPEAKERS):
        for j in range(2):
            stem = f"{spk}a0{j + 1}{LETTERS[(i + j) % 7]}a"
            fx.write_wav(wav / f"{stem}.wav", 0.1, 22050, freq=200 + 10 * i)
            stems.append(stem)
    fx.write_zero_length(wav / "03a05Wb.wav")
    fx.write_corrupt(wav / "08a05Ab.wav")
    fx.write_truncated_wav(wav / "09a05Lb.wav", 0.2, 22050)
    fx.write_wav(wav / "notemodb.wav", 0.1, 22050)
    (wav / "README.txt").write_text("not audio")  # non-wav files are ignored, not skipped
    folds = root / "emobox_folds"
    folds.mkdir()
    test = set(stems[::5])
    for part, chosen in (("train", [s for s in stems if s not in test] + ["03a05Wb"]),
                         ("test", sorted(test))):
        with open(folds / f"emodb_{part}_fold_1.jsonl", "w") as f:
            for s in chosen:
                f.write(json.dumps({"key": f"emodb-{s}", "wav": f"downloads/emodb/wav/{s}.wav",
                                    "emo": "x"}) + "\n")
    return root, stems, test


def test_default_split_and_skips(corpus, tmp_path):
    root, stems, _ = corpus
    _, ex, rep = fx.build_and_read("emodb", "default", tmp_path, root)
    assert sum(len(v) for v in ex.values()) == len(stems) == 20
    assert fx.speakers_by_split(ex) == {k: v for k, v in emodb.DEFAULT_SPLIT.items()}
    fx.assert_speaker_disjoint(ex)
    e = next(x for x in ex["train"] if fx.text(x["id"]) == "03a01Wa")
    assert e["label"] == emodb.LABELS.index("anger") and fx.text(e["text_id"]) == "a01"
    assert e["audio"].dtype.name == "int16" and e["audio"].shape == (1600,)
    assert rep["resampled_examples"] == 20
    assert rep["splits"]["train"]["orig_sample_rates"] == {"22050": 12}
    reasons = {Path(s["path"]).name: s["reason"] for v in rep["skipped"].values() for s in v}
    assert set(reasons) == {"03a05Wb.wav", "08a05Ab.wav", "09a05Lb.wav", "notemodb.wav"}
    assert "zero-length" in reasons["03a05Wb.wav"] and "truncated" in reasons["09a05Lb.wav"]
    assert "unreadable" in reasons["08a05Ab.wav"] and "name" in reasons["notemodb.wav"]
    assert rep["skipped_total"] == 4


def test_lso_folds_and_wav_dir_as_manual_dir(corpus, tmp_path):
    root, _, _ = corpus
    _, ex, _ = fx.build_and_read("emodb", "lso_fold5", tmp_path, root / "wav")
    assert fx.speakers_by_split(ex) == {"test": {"15", "16"}, "validation": {"03", "08"},
                                        "train": {"09", "10", "11", "12", "13", "14"}}


def _write_emobox(folder: Path, fold: int, parts: dict) -> None:
    """EmoBox's layout: ``<folder>/fold_K/emodb_<part>_fold_K.jsonl``."""
    (folder / f"fold_{fold}").mkdir(parents=True, exist_ok=True)
    for part, chosen in parts.items():
        with open(folder / f"fold_{fold}" / f"emodb_{part}_fold_{fold}.jsonl", "w") as f:
            for s in chosen:
                f.write(json.dumps({"key": f"emodb-{s}", "wav": f"downloads/emodb/wav/{s}.wav",
                                    "emo": "x"}) + "\n")


def test_emobox_fold(corpus, tmp_path):
    from data_prep import folds
    from data_prep._common.report import read_report
    from data_prep.build import build

    root, stems, test = corpus
    # The stored lists name 03a05Wb, a zero-length file the build skipped: EmoBox's fold cannot
    # be reproduced over this build, and reading it (the alias emobox_fold1) names the key.
    with pytest.raises(folds.FoldError, match="'emodb-03a05Wb' -> no stored example"):
        fx.build_and_read("emodb", "emobox_fold1", tmp_path, root)
    builder = build("emodb", "default", str(tmp_path), str(root))  # the one build, reused
    rep = read_report(builder)
    assert rep["notes"]["folds"]["emobox"]["speaker_independent"] is False
    train_list = [s for s in stems if s not in test]
    _write_emobox(tmp_path / "EmoBox" / "data" / "emodb", 1,
                  {"train": train_list, "test": sorted(test)})
    emobox = folds.emobox_protocol(builder.data_dir, tmp_path / "EmoBox", "emodb")
    ids = folds.fold_view(builder.data_dir, 1, "emobox", {"emobox": emobox})["ids"]
    assert ids["test"] == test
    assert ids["train"] | ids["validation"] == set(stems) - test
    expected = carve(train_list, emodb.EMOBOX_VALID_FRACTION, "emodb-emobox-1")
    assert ids["validation"] == expected and expected  # a stable hash of the ids, not an RNG
    assert emobox["speaker_independent"] is False


def test_hard_errors(tmp_path):
    (tmp_path / "empty" / "wav").mkdir(parents=True)
    (tmp_path / "empty" / "wav" / "x.txt").write_text("")
    with pytest.raises(CorpusError, match="no .wav files"):
        fx.build_and_read("emodb", "default", tmp_path / "out", tmp_path / "empty")
    from data_prep.build import BuildError, build

    with pytest.raises(BuildError, match="nowhere"):
        build("emodb", "default", str(tmp_path / "out"), str(tmp_path / "nowhere"))


def test_real_emodb(real, tmp_path):
    _, ex, rep = fx.build_and_read("emodb", "default", tmp_path, real)
    assert sum(len(v) for v in ex.values()) == 535
    counts = collections.Counter(e["label"] for v in ex.values() for e in v)
    by_letter = {LETTERS[i]: counts[emodb.LABELS.index(emodb.LETTER_TO_LABEL[LETTERS[i]])]
                 for i in range(7)}
    assert by_letter == {"W": 127, "L": 81, "E": 46, "A": 69, "F": 71, "T": 62, "N": 79}
    fx.assert_speaker_disjoint(ex)
    assert rep["skipped_total"] == 0 and rep["resampled_examples"] == 535
    assert all(len(e["audio"]) == 32000 for e in ex["test"])  # 2.000 s at 16 kHz


def test_real_emobox_fold1(real, tmp_path):
    _, ex, rep = fx.build_and_read("emodb", "emobox_fold1", tmp_path, real)
    assert len(ex["test"]) == 107 and len(ex["train"]) + len(ex["validation"]) == 428
    assert rep["skipped_total"] == 0
