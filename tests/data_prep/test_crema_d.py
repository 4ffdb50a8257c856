"""CREMA-D builder on a synthetic corpus in the real layout (AudioWAV 16 kHz, VideoFlash .flv)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep._common.report import CorpusError  # noqa: E402
from data_prep.crema_d import crema_d  # noqa: E402

ACTORS = ("1001", "1002", "1020", "1040", "1075", "1085", "1091")
NO_VIDEO = "1040_TIE_HAP_XX"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("crema_d")
    wav, vid = root / "AudioWAV", root / "VideoFlash"
    stems = []
    for i, a in enumerate(ACTORS):
        for _j, (sent, emo, lvl) in enumerate((("IEO", "ANG", "HI"), ("TIE", crema_d.CODES[i % 6],
                                                                     "XX"))):
            stem = f"{a}_{sent}_{emo}_{lvl}"
            fx.write_wav(wav / f"{stem}.wav", 0.1, 16000, freq=200 + 20 * i)
            stems.append(stem)
            if stem != NO_VIDEO:
                fx.write_mp4(vid / f"{stem}.flv", seconds=0.3, fps=10, size=(120, 160),
                             vcodec="flv", audio_sr=22050, face=i % 2 == 0)
    assert NO_VIDEO in stems
    bad = {"1001_DFA_ANG_LO.wav": fx.write_zero_length,
           "1002_DFA_ANG_LO.wav": fx.write_corrupt,
           "1020_DFA_ANG_LO.wav": lambda p: fx.write_truncated_wav(p, 0.2, 16000),
           "1001_DFA_XXX_LO.wav": lambda p: fx.write_wav(p, 0.1, 16000),  # unknown emotion
           "0999_DFA_ANG_LO.wav": lambda p: fx.write_wav(p, 0.1, 16000)}  # unknown actor
    for name, make in bad.items():
        make(wav / name)
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n")
    return root, stems, bad


def test_audio_fixed_split(corpus, tmp_path):
    root, stems, bad = corpus
    _, ex, rep = fx.build_and_read("crema_d", "audio", tmp_path, root)
    assert {s: len(v) for s, v in ex.items()} == {"train": 8, "validation": 2, "test": 4}
    by = fx.speakers_by_split(ex)
    assert by == {"train": {"1001", "1002", "1020", "1040"}, "validation": {"1075"},
                  "test": {"1085", "1091"}}
    fx.assert_speaker_disjoint(ex)
    e = next(x for x in ex["train"] if fx.text(x["id"]) == "1001_IEO_ANG_HI")
    assert crema_d.LABELS[e["label"]] == "anger" and fx.text(e["gender"]) == "male"
    assert crema_d.LEVELS[e["level"]] == "HI" and fx.text(e["sentence"]) == "IEO"
    assert e["audio"].shape == (1600,)
    assert rep["resampled_examples"] == 0  # CREMA-D is already 16 kHz
    reasons = {Path(s["path"]).name: s["reason"] for v in rep["skipped"].values() for s in v}
    assert set(reasons) == set(bad)
    assert "zero-length" in reasons["1001_DFA_ANG_LO.wav"]
    assert "truncated" in reasons["1020_DFA_ANG_LO.wav"]
    assert "outside" in reasons["0999_DFA_ANG_LO.wav"]


@pytest.mark.parametrize("fold,test_actors", [(1, {"1001", "1002"}), (5, {"1075", "1085", "1091"})])
def test_audio_folds(corpus, tmp_path, fold, test_actors):
    root, _, _ = corpus
    _, ex, _ = fx.build_and_read("crema_d", f"audio_fold{fold}", tmp_path, root)
    assert fx.speakers_by_split(ex)["test"] == test_actors
    fx.assert_speaker_disjoint(ex)
    for k in range(1, 6):
        crema_d_splits = crema_d.speaker_splits(k)
        assert sum(map(len, crema_d_splits.values())) == 91


def test_av(corpus, tmp_path):
    root, stems, _ = corpus
    _, ex, rep = fx.build_and_read("crema_d", "av", tmp_path, root)
    assert sum(len(v) for v in ex.values()) == len(stems) - 1
    reasons = {Path(s["path"]).name: s["reason"] for v in rep["skipped"].values() for s in v}
    assert "missing video" in reasons[f"{NO_VIDEO}.wav"]
    for e in (e for v in ex.values() for e in v):
        assert e["face"].shape == (16, 64, 64, 3) and e["frames"].shape == (16, 64, 64, 3)
        has_face = ACTORS.index(fx.text(e["speaker"])) % 2 == 0
        assert (e["face_found"] > 0.5) if has_face else (e["face_found"] == 0.0)


def test_missing_audio_dir(tmp_path):
    (tmp_path / "corpus" / "other").mkdir(parents=True)
    with pytest.raises(CorpusError, match="AudioWAV"):
        fx.build_and_read("crema_d", "audio", tmp_path / "out", tmp_path / "corpus")


def old_fold_ids(stored, fold: int) -> dict[str, set[str]]:
    """The ids the per-fold build ``audio_fold<fold>`` stored in each split before 1.1.0: every
    stored example (the skips never depended on the fold), split by that config's actor rule."""
    actors = crema_d.speaker_splits(fold)
    return {s: {fx.text(e["id"]) for e in stored if fx.text(e["speaker"]) in a}
            for s, a in actors.items()}


def test_fold_views_give_the_ids_of_the_old_per_fold_builds(corpus, tmp_path):
    from data_prep import folds

    root, _, _ = corpus
    builder, ex, _ = fx.build_and_read("crema_d", "audio", tmp_path, root)
    stored = [e for v in ex.values() for e in v]
    assert folds.protocols_of(builder.data_dir) == {"actors": 5}
    for k in range(1, 6):
        view = folds.fold_view(builder.data_dir, k, "actors")
        assert view["ids"] == old_fold_ids(stored, k)
        _, alias, _ = fx.build_and_read("crema_d", f"audio_fold{k}", tmp_path, root)
        assert {s: {fx.text(e["id"]) for e in v} for s, v in alias.items()} == view["ids"]
    assert [p.name for p in (tmp_path / "crema_d").iterdir() if p.name[0] != "."] == ["audio"]


def _write_cremad(root: Path, parts: dict[str, list[str]]) -> Path:
    """EmoBox's CREMA-D fold (one): ``data/cremad/fold_1/cremad_<part>_fold_1.jsonl``, keys
    ``cremad-1001-IEO-ANG-HI`` and wav paths ``downloads/cremad/AudioWAV/<stem>.wav``."""
    import json

    d = root / "data" / "cremad" / "fold_1"
    d.mkdir(parents=True, exist_ok=True)
    for part, stems in parts.items():
        with open(d / f"cremad_{part}_fold_1.jsonl", "w") as f:
            for s in stems:
                f.write(json.dumps({"key": "cremad-" + s.replace("_", "-"), "dataset": "cremad",
                                    "wav": f"downloads/cremad/AudioWAV/{s}.wav", "type": "raw",
                                    "sample_rate": 16000, "task": "category",
                                    "emo": s.split("_")[2], "channel": 1}) + "\n")
    return root


def test_emobox_fold_read_from_emobox_files(corpus, tmp_path):
    from data_prep import folds
    from data_prep._common.speakers import carve

    root, _, _ = corpus
    builder, ex, _ = fx.build_and_read("crema_d", "audio", tmp_path, root)
    stems = sorted(fx.text(e["id"]) for v in ex.values() for e in v)
    test = stems[::3]  # EmoBox's CREMA-D fold is not split by actor
    train = [s for s in stems if s not in test]
    _write_cremad(tmp_path / "EmoBox", {"train": train, "test": test})
    emobox = folds.emobox_protocol(builder.data_dir, tmp_path / "EmoBox" / "data", "crema_d")
    view = folds.fold_view(builder.data_dir, 1, "emobox", {"emobox": emobox})
    val = carve(train, 0.1, salt="cremad-emobox-1")
    assert view["ids"] == {"train": set(train) - val, "validation": val, "test": set(test)}
    assert val and view["num_folds"] == 1 and not view["speaker_independent"]


def test_emobox_missing_id_is_an_error_naming_it(corpus, tmp_path):
    from data_prep import folds

    root, _, _ = corpus
    builder, ex, _ = fx.build_and_read("crema_d", "audio", tmp_path, root)
    stems = sorted(fx.text(e["id"]) for v in ex.values() for e in v)
    # 1001_DFA_ANG_LO is in the corpus but zero-length: the build skipped it, EmoBox lists it.
    _write_cremad(tmp_path / "EmoBox", {"train": stems[3:] + ["1001_DFA_ANG_LO"],
                                        "test": stems[:2]})
    emobox = folds.emobox_protocol(builder.data_dir, tmp_path / "EmoBox", "crema_d")
    with pytest.raises(folds.FoldError) as err:
        folds.fold_view(builder.data_dir, 1, "emobox", {"emobox": emobox})
    assert "key 'cremad-1001-DFA-ANG-LO' -> no stored example" in str(err.value)
    assert f"stored example {stems[2]!r} is in no list of EmoBox cremad fold 1" in str(err.value)
