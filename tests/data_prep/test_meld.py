"""MELD builder on generated CSVs (real columns, cp1252 and BOM) and tiny H.264/AAC clips."""

import sys
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_text import MELD_ROWS, write_meld  # noqa: E402

from data_prep._common.report import CorpusError, read_report  # noqa: E402
from data_prep.build import build  # noqa: E402
from data_prep.meld import parse  # noqa: E402

SPLITS = {"train": "train", "validation": "dev", "test": "test"}


def _read(builder, split):
    ds = tfds.data_source(builder.info.full_name.rsplit("/", 1)[0], split=split,
                          data_dir=builder._data_dir_root)
    return {ex["id"].decode(): ex for ex in (ds[i] for i in range(len(ds)))}


def _check_rows(b, skip_ids=()):
    for split, prefix in SPLITS.items():
        got = _read(b, split)
        want = {f"{prefix}_dia{d}_utt{u}": r for r in MELD_ROWS[prefix] for d, u in [r[:2]]}
        assert set(got) == set(want) - set(skip_ids), split
        for i, ex in got.items():
            d, u, spk, text, emo, sen = want[i]
            assert ex["speaker"].decode() == spk and ex["text"].decode() == text
            assert ex["label"] == parse.EMOTIONS.index(emo)
            assert ex["sentiment"] == parse.SENTIMENTS.index(sen)
            assert ex["dialogue_id"].decode() == f"{prefix}_dia{d}" and ex["turn"] == u
    return b


def test_text_config(tmp_path):
    write_meld(tmp_path / "MELD.Raw")
    b = _check_rows(build("meld", "text", str(tmp_path / "tfds"), str(tmp_path)))
    rep = read_report(b)
    # The train CSV is cp1252 throughout: its two ’ bytes (0x92) are the only repairs.
    assert rep["repairs"] == {"cp1252_bytes": 2}
    assert rep["repaired_files"]["cp1252_bytes"] == ["train_sent_emo.csv"]
    # The row with an unknown emotion is a counted, logged skip.
    assert rep["skipped_total"] == 1 and "contempt" in rep["skipped"]["train"][0]["reason"]


@pytest.mark.parametrize("layout", ["release", "plain"])
def test_av_config_with_missing_clip(tmp_path, layout):
    write_meld(tmp_path / "raw", clips=True, layout=layout, bad_row=False)
    b = _check_rows(build("meld", "av", str(tmp_path / "tfds"), str(tmp_path / "raw")),
                    skip_ids={"dev_dia110_utt7"})
    rep = read_report(b)
    assert rep["skipped_total"] == 1
    (skip,) = rep["skipped"]["validation"]
    assert skip["path"].endswith("dia110_utt7.mp4") and "no such file" in skip["reason"]
    cfg = b.builder_config
    for ex in _read(b, "train").values():
        assert ex["audio"].dtype.name == "int16" and abs(ex["audio"].size - 9600) < 1600
        assert ex["frames"].shape == (cfg.num_frames, *cfg.frame_size, 3)
        assert ex["face"].shape == (cfg.num_frames, *cfg.face_size, 3)
    assert rep["splits"]["train"]["orig_sample_rates"] == {"48000": 5}


def test_corrupt_clip_is_counted_skip(tmp_path):
    write_meld(tmp_path / "raw", clips=True, missing=None, bad_row=False)
    bad = tmp_path / "raw" / "output_repeated_splits_test" / "dia0_utt1.mp4"
    bad.write_bytes(b"\x00" * 500)
    b = build("meld", "av", str(tmp_path / "tfds"), str(tmp_path / "raw"))
    assert set(_read(b, "test")) == {"test_dia0_utt0"}
    assert read_report(b)["skipped"]["test"][0]["path"] == str(bad)


def test_missing_csv_is_named(tmp_path):
    write_meld(tmp_path / "raw")
    (tmp_path / "raw" / "dev_sent_emo.csv").unlink()
    with pytest.raises(CorpusError, match="dev_sent_emo.csv"):
        build("meld", "text", str(tmp_path / "tfds"), str(tmp_path / "raw"))


def test_csv_missing_column_is_named(tmp_path):
    write_meld(tmp_path / "raw")
    p = tmp_path / "raw" / "test_sent_emo.csv"
    p.write_text(p.read_text(encoding="utf-8-sig").replace("Emotion", "Emo"), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"test_sent_emo\.csv.*Emotion"):
        build("meld", "text", str(tmp_path / "tfds"), str(tmp_path / "raw"))
