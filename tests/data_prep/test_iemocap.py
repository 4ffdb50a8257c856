"""IEMOCAP builder on generated release trees and pickles, and on the real COSMIC pickle."""

import collections
import pickle
import sys
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_text import IEMO_DIALOGUES, write_cosmic, write_iemocap_release  # noqa: E402

from data_prep._common.report import CorpusError, read_report  # noqa: E402
from data_prep._common.safe_pickle import UnsafePickleError  # noqa: E402
from data_prep.build import build  # noqa: E402
from data_prep.iemocap import parse  # noqa: E402

SPLITS = ("train", "validation", "test")


def _read(builder, split):
    ds = tfds.data_source(builder.info.full_name.rsplit("/", 1)[0], split=split,
                          data_dir=builder._data_dir_root)
    return [ds[i] for i in range(len(ds))]


def _s(x):
    return x.decode() if isinstance(x, bytes) else x


def _expected(turns, classes):
    names = parse.LABELS_4 if classes == 4 else parse.LABELS_6
    out = {}
    for t in turns:
        label = t.label if classes == 6 else parse.MERGE_4.get(t.label)
        if label in names:
            out[t.turn_name] = (names.index(label), t)
    return out


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release"
    turns = write_iemocap_release(root)
    return root.parent, turns


@pytest.mark.parametrize("classes", [4, 6])
def test_release_build(release, tmp_path, classes):
    manual, turns = release
    b = build("iemocap", f"{classes}class", str(tmp_path), str(manual))
    want = _expected(turns, classes)
    got = {s: _read(b, s) for s in SPLITS}
    missing = "Ses01F_impro01_M003"
    assert sum(map(len, got.values())) == len(want) - (missing in want)
    dialogues = {}
    for split, exs in got.items():
        for ex in exs:
            name = _s(ex["id"])
            y, t = want[name]
            assert ex["label"] == y, name
            assert _s(ex["dialogue_id"]) == t.dialogue
            assert _s(ex["speaker"]) == name[:5] + name.rsplit("_", 1)[1][0]
            assert ex["audio"].dtype.name == "int16" and ex["audio"].size == 4800
            assert list(ex["vad"]) == [2.5, 3.0, 3.5]
            dialogues.setdefault(t.dialogue, set()).add(split)
            if split == "test":
                assert name.startswith("Ses05")
            else:
                assert not name.startswith("Ses05")
    assert all(len(s) == 1 for s in dialogues.values()), dialogues
    assert {d for d, s in dialogues.items() if s == {"validation"}} == {
        "Ses01M_impro01", "Ses02F_impro02"}
    # Turns: contiguous positions among kept utterances, in start-time order.
    for d in dialogues:
        kept = sorted((t.start, n) for n, (_, t) in want.items() if t.dialogue == d)
        by_name = {_s(ex["id"]): ex["turn"] for exs in got.values() for ex in exs
                   if _s(ex["dialogue_id"]) == d}
        for pos, (_, n) in enumerate(kept):
            if n != missing:
                assert by_name[n] == pos, (d, n)
    rep = read_report(b)
    assert rep["skipped_total"] == (missing in want)
    discarded = collections.Counter(t.label for t in turns if t.turn_name not in want)
    assert rep["notes"]["discarded_labels"] == dict(discarded)
    assert len(rep["notes"]["transcripts_repaired"]) == 1


def test_4class_merges_exc_into_hap(release, tmp_path):
    manual, turns = release
    b = build("iemocap", "4class", str(tmp_path), str(manual))
    raw = {t.turn_name: t.label for t in turns}
    hap = [ex for s in SPLITS for ex in _read(b, s) if ex["label"] == parse.LABELS_4.index("hap")]
    assert {raw[_s(ex["id"])] for ex in hap} == {"hap", "exc"}


def test_non_utf8_transcript_is_repaired_as_cp1252(release, tmp_path):
    manual, _ = release
    b = build("iemocap", "6class", str(tmp_path), str(manual))
    texts = {_s(ex["id"]): ex["text"].decode() for s in SPLITS for ex in _read(b, s)}
    bad = [t for n, t in texts.items() if n.startswith("Ses02F_impro02")]
    # The cp1252 bytes of "café crème" are read as cp1252 (the same kind of fault as MELD's).
    assert bad and all(t.startswith("café crème") for t in bad)
    # Every é/è byte of that transcript (kept utterances or not) is one counted repair.
    raw = next(manual.rglob("transcriptions/Ses02F_impro02.txt")).read_bytes()
    assert read_report(b)["repairs"]["cp1252_bytes"] == raw.count(b"\xe9") + raw.count(b"\xe8")
    assert texts["Ses01F_impro01_F000"] == "utterance 0 of Ses01F_impro01"


def test_av_config_frames_faces_and_missing_avi(tmp_path):
    root = tmp_path / "raw"
    turns = write_iemocap_release(root, avi=True, missing_wav=None)
    (root / "Session1" / "dialog" / "avi" / "DivX" / "Ses01F_impro01.avi").unlink()
    b = build("iemocap", "4class_av", str(tmp_path / "tfds"), str(root))
    want = _expected(turns, 4)
    n_gone = sum(t.dialogue == "Ses01F_impro01" for _, t in want.values())
    exs = [ex for s in SPLITS for ex in _read(b, s)]
    assert len(exs) == len(want) - n_gone
    rep = read_report(b)
    assert rep["skipped_total"] == n_gone
    assert all(s["path"].endswith("Ses01F_impro01.avi") for s in rep["skipped"]["train"])
    cfg = b.builder_config
    for ex in exs:
        assert ex["frames"].shape == (cfg.num_frames, *cfg.frame_size, 3)
        assert ex["face"].shape == (cfg.num_frames, *cfg.face_size, 3)
        assert 0.0 <= ex["face_found"] <= 1.0
    assert rep["splits"]["train"]["mean_face_found"] > 0.5


def test_missing_release_is_a_corpus_error(tmp_path):
    (tmp_path / "other" / "Session1").mkdir(parents=True)
    with pytest.raises(CorpusError, match="EmoEvaluation"):
        build("iemocap", "4class", str(tmp_path / "tfds"), str(tmp_path / "other"))


def test_text_config_on_generated_pickle(tmp_path):
    obj = write_cosmic(tmp_path / "raw")
    b = build("iemocap", "text", str(tmp_path / "tfds"), str(tmp_path / "raw"))
    speakers, labels, sentences, train, test, valid = obj
    for split, ids in (("train", train), ("validation", valid), ("test", test)):
        exs = _read(b, split)
        assert len(exs) == sum(len(labels[d]) for d in ids)
        for ex in exs:
            d, t = _s(ex["dialogue_id"]), int(ex["turn"])
            assert d in ids and _s(ex["id"]) == f"{d}_{t}"
            assert ex["label"] == labels[d][t] and _s(ex["speaker"]) == speakers[d][t]
            assert _s(ex["text"]) == sentences[d][t]


def test_text_config_missing_pickle_names_it(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "README").write_text("the pickle is elsewhere")
    with pytest.raises(CorpusError, match=r"raw/iemocap\.pkl"):
        build("iemocap", "text", str(tmp_path / "tfds"), str(tmp_path / "raw"))


def test_text_config_refuses_malicious_pickle(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "iemocap.pkl").write_bytes(pickle.dumps([Evil()] * 6))
    with pytest.raises(UnsafePickleError, match="iemocap.pkl"):
        build("iemocap", "text", str(tmp_path / "tfds"), str(tmp_path / "raw"))


def test_text_config_on_real_pickle(shared_data, tmp_path):
    real = shared_data / "iemocap_text"
    if not (real / "iemocap.pkl").is_file():
        pytest.skip(f"the real COSMIC pickle is not at {real / 'iemocap.pkl'}")
    b = build("iemocap", "text", str(tmp_path), str(real))
    want = {"train": (5163, 108), "validation": (647, 12), "test": (1623, 31)}
    seen = {}
    for split, (n, n_dialogues) in want.items():
        exs = _read(b, split)
        dialogues = {_s(ex["dialogue_id"]) for ex in exs}
        assert (len(exs), len(dialogues)) == (n, n_dialogues)
        assert {_s(ex["speaker"]) for ex in exs} == {"M", "F"}
        for d in dialogues:
            assert d not in seen
            seen[d] = split
            assert (split == "test") == d.startswith("Ses05")
    assert {d for d, s in seen.items() if s == "validation"} == parse.VALID_DIALOGUES
    assert len(IEMO_DIALOGUES) == 3  # the generated release covers sessions 1, 2 and 5
