"""EmoBox's own fold files read over a build: file layouts, key -> id mapping per corpus, a
folder corpus through its manifest, and the errors that name a file, line or id."""

import json
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep import folds  # noqa: E402
from data_prep._common import emobox  # noqa: E402


def _jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_layouts_and_the_older_file_name(tmp_path):
    row = {"key": "emodb-03a01Wa", "wav": "downloads/emodb/wav/03a01Wa.wav"}
    # EmoBox's checkout: data/<name>/fold_K/; an older "_foldK" copy beside "_fold_K" loses.
    base = tmp_path / "EmoBox" / "data" / "emodb" / "fold_1"
    _jsonl(base / "emodb_train_fold_1.jsonl", [row])
    _jsonl(base / "emodb_train_fold1.jsonl", [{"key": "emodb-old", "wav": "old.wav"}])
    _jsonl(base / "emodb_test_fold_1.jsonl", [row | {"key": "emodb-03a02Wa"}])
    for where in (tmp_path / "EmoBox", tmp_path / "EmoBox" / "data",
                  tmp_path / "EmoBox" / "data" / "emodb"):
        lists = emobox.read_lists(where, "emodb")
        assert [e[0] for e in lists[1]["train"]] == ["emodb-03a01Wa"]
    flat = tmp_path / "emobox_folds"  # EmoDB's flat folder next to wav/
    _jsonl(flat / "emodb_train_fold_2.jsonl", [row])
    _jsonl(flat / "emodb_test_fold_2.jsonl", [row])
    assert list(emobox.read_lists(flat, "emodb")) == [2]


def test_unreadable_files_are_errors_naming_file_and_line(tmp_path):
    _jsonl(tmp_path / "meld_train_fold_1.jsonl", [{"key": "meld-dia0_utt0-train"}])
    with pytest.raises(emobox.EmoboxError, match="no test file beside"):
        emobox.read_lists(tmp_path, "meld")
    (tmp_path / "meld_test_fold_1.jsonl").write_text('{"key": "meld-dia0_utt1-test"}\n{oops\n')
    with pytest.raises(emobox.EmoboxError, match=r"meld_test_fold_1\.jsonl:2: not a JSON line"):
        emobox.read_lists(tmp_path, "meld")
    (tmp_path / "meld_test_fold_1.jsonl").write_text('{"emo": "joy"}\n')
    with pytest.raises(emobox.EmoboxError, match=r"fold_1\.jsonl:1: a line needs a 'key' or"):
        emobox.read_lists(tmp_path, "meld")
    with pytest.raises(emobox.EmoboxError, match="no EmoBox fold files iemocap_"):
        emobox.read_lists(tmp_path, "iemocap")


def test_key_mapping_per_corpus():
    meld = emobox.id_mapper("meld", {"dev_dia0_utt1", "train_dia3_utt0"})
    assert meld("meld-dia0_utt1-dev", "downloads/meld/dev_splits_complete/dia0_utt1.mp4") == [
        "dev_dia0_utt1"]
    assert meld("meld-dia9_utt9-dev", "x/dia9_utt9.mp4") == []
    iemocap = emobox.id_mapper("iemocap", {"Ses01F_impro01_F000"})
    assert iemocap("iemocap-x", "downloads/iemocap/Session1/sentences/wav/Ses01F_impro01/"
                                "Ses01F_impro01_F000.wav") == ["Ses01F_impro01_F000"]
    stored = {"Sound Source/Angry/1157_kz_acik", "Angry/1157_kz_acik", "Sad/1157_kz_acik"}
    folder = emobox.id_mapper("folder", stored)
    wav = "downloads/turevdb/Sound Source/Angry/1157_kz_acik.wav"
    assert sorted(folder("k", wav)) == ["Angry/1157_kz_acik", "Sound Source/Angry/1157_kz_acik"]
    explicit = emobox.id_mapper("folder", stored, {"turevdb-1": "Sad/1157_kz_acik"})
    assert explicit("turevdb-1", wav) == ["Sad/1157_kz_acik"]


def test_protocol_uses_a_valid_list_and_lists_every_mismatch():
    where = "f.jsonl:1"
    lists = {1: {"train": [("k-a", "a.wav", where), ("k-b", "b.wav", where)],
                 "valid": [("k-c", "c.wav", where)], "test": [("k-d", "d.wav", where)]}}
    speakers = {"a": "1", "b": "1", "c": "2", "d": "3"}
    p = emobox.protocol(lists, emobox.id_mapper("x", speakers), speakers, "x")
    assert p["folds"][0]["validation"] == ["c"] and "errors" not in p
    assert "EmoBox's valid list" in p["description"] and p["speaker_independent"]
    lists[1]["test"].append(("k-a", "a.wav", "f.jsonl:9"))
    bad = emobox.protocol(lists, emobox.id_mapper("x", {**speakers, "e": "4"}),
                          {**speakers, "e": "4"}, "x")
    assert bad["errors"] == ["f.jsonl:9: example 'a' is listed twice in fold 1",
                             "stored example 'e' is in no list of EmoBox x fold 1"]


def _turev_like(root: Path) -> None:
    for spk in ("1157", "1234", "1358"):
        for emo in ("Angry", "Sad"):
            fx.write_wav(root / "Sound Source" / emo / f"{spk}_kz_{emo.lower()}.wav", 0.05, 16000)


def test_folder_corpus_by_path_and_through_its_manifest(tmp_path, caplog):
    from data_prep.build import build

    root = tmp_path / "corpus"
    _turev_like(root)
    spec = {"name": "mini_turev", "classes": ["angry", "sad"], "emobox": "turevdb",
            "speaker_regex": r"^(?P<speaker>\d+)_"}
    (tmp_path / "mini.json").write_text(json.dumps(spec))
    (tmp_path / "tfds" / "labelled_folder" / "mini_turev").mkdir(parents=True)  # an old build
    with caplog.at_level(logging.WARNING):
        b = build("folder", str(tmp_path / "mini.json"), str(tmp_path / "tfds"), str(root))
    # Issue 33's nits: the build lives under the corpus name (an old build's place is named),
    # and TFDS's absl warning about a custom config is not printed.
    assert Path(b.data_dir) == tmp_path / "tfds" / "folder" / "mini_turev" / "1.0.0"
    logged = [r.getMessage() for r in caplog.records]
    assert not [m for m in logged if "custom data configuration" in m]
    assert [m for m in logged if "labelled_folder/mini_turev is an earlier build" in m]
    ids = sorted(folds.stored_examples(b.data_dir))
    assert ids[0] == "Sound Source/Angry/1157_kz_angry"
    fold_dir = tmp_path / "EmoBox" / "data" / "turevdb" / "fold_1"
    rows = [{"key": f"turevdb-{i.rsplit('/', 1)[-1]}", "wav": f"downloads/turevdb/{i}.wav"}
            for i in ids]
    _jsonl(fold_dir / "turevdb_train_fold_1.jsonl", rows[2:])
    _jsonl(fold_dir / "turevdb_test_fold_1.jsonl", rows[:2])
    p = folds.emobox_protocol(b.data_dir, tmp_path / "EmoBox", "folder")
    assert "errors" not in p and p["folds"][0]["test"] == ids[:2]

    # Through a manifest: its emobox_key column names each row's EmoBox key.
    manifest = tmp_path / "corpus" / "list.csv"
    manifest.write_text("path,label,speaker,emobox_key\n" + "".join(
        f"{i}.wav,{i.split('/')[1]},{i.split('/')[2][:4]},tv-{n}\n" for n, i in enumerate(ids)))
    spec |= {"name": "mini_manifest", "manifest": "list.csv"}
    (tmp_path / "m.json").write_text(json.dumps(spec))
    b = build("folder", str(tmp_path / "m.json"), str(tmp_path / "tfds"), str(root))
    renamed = [{"key": f"tv-{n}", "wav": f"elsewhere/{n}.wav"} for n in range(len(ids))]
    _jsonl(fold_dir / "turevdb_train_fold_1.jsonl", renamed[:4])
    _jsonl(fold_dir / "turevdb_test_fold_1.jsonl", renamed[4:] + [{"key": "tv-99", "wav": ""}])
    p = folds.emobox_protocol(b.data_dir, tmp_path / "EmoBox", "folder")
    assert p["errors"] == [f"{fold_dir / 'turevdb_test_fold_1.jsonl'}:3: key 'tv-99' -> no "
                           "stored example"]
    assert p["folds"][0]["test"] == ids[4:]
    with pytest.raises(folds.FoldError, match="key 'tv-99' -> no stored example"):
        folds.fold_view(b.data_dir, 1, "emobox", {"emobox": p})


def test_corpus_without_emobox_folds_is_refused(tmp_path):
    with pytest.raises(folds.FoldError, match="EmoBox publishes no folds of corpus 'cmu_mosi'"):
        folds.emobox_protocol(tmp_path, tmp_path, "cmu_mosi", stored={})


def test_meld_build_read_through_emobox_lists(tmp_path):
    """A build that stores no fold protocol (MELD): its ids are read from the records, EmoBox's
    ``meld-dia0_utt1-dev`` keys map to ``dev_dia0_utt1``, and its ``valid`` list is validation."""
    from fixtures_text import write_meld

    from data_prep.build import build
    from mmer_jax.data import sources
    from mmer_jax.schema import DataConfig

    write_meld(tmp_path / "MELD.Raw")
    b = build("meld", "text", str(tmp_path / "tfds"), str(tmp_path))
    split_of = {"train": "train", "validation": "valid", "test": "test"}
    parts: dict[str, list] = {"train": [], "valid": [], "test": []}
    for split in ("train", "validation", "test"):
        src = b.as_data_source(split=split)
        for i in range(len(src)):
            prefix, dia, utt = src[i]["id"].decode().split("_")
            parts[split_of[split]].append({"key": f"meld-{dia}_{utt}-{prefix}",
                                           "wav": f"downloads/meld/{prefix}/{dia}_{utt}.mp4"})
    for part, rows in parts.items():
        _jsonl(tmp_path / "EmoBox" / "data" / "meld" / "fold_1" / f"meld_{part}_fold_1.jsonl",
               rows)
    data = DataConfig(corpus="meld", config="text", data_dir=str(tmp_path / "tfds"),
                      fold=1, fold_protocol="emobox", emobox_dir=str(tmp_path / "EmoBox"))
    view = sources.fold_view(b, data)
    for split in ("train", "validation", "test"):
        src = b.as_data_source(split=split)
        assert view["ids"][split] == {src[i]["id"].decode() for i in range(len(src))}
    assert "EmoBox's valid list" in view["description"]
