"""Fault 1 (text encoding), by kind: the shared decoder, MELD's CSVs through it, the tokenizer."""

import collections
import csv
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_text import MELD_HEADER, write_meld  # noqa: E402

from data_prep._common.report import read_report  # noqa: E402
from data_prep._common.text import decode_text, repair_c1  # noqa: E402
from data_prep.build import build  # noqa: E402
from mmer_jax.data.text import Tokenizer, split_words  # noqa: E402


def test_one_stray_cp1252_byte_does_not_turn_the_file_into_mojibake():
    raw = "café, naïve’s\n".encode() + b"it\x92s\n" + "“done” é\n".encode()
    rep = collections.Counter()
    assert decode_text(raw, rep) == "café, naïve’s\nit’s\n“done” é\n"
    assert rep == {"cp1252_bytes": 1}


def test_c1_code_points_become_the_cp1252_punctuation_they_stand_for():
    rep = collections.Counter()
    # U+0092 / U+0093 / U+0094 / U+0085 as in the real MELD release; U+0081 has no cp1252 char.
    assert repair_c1("I\x92m \x93ok\x94\x85\x81", rep) == "I’m “ok”…"
    assert rep == {"c1_code_points": 4, "c1_undefined": 1}
    assert decode_text("I\u0092m".encode(), collections.Counter()) == "I’m"
    assert decode_text("\ufeffplain".encode()) == "plain"  # BOM dropped, nothing repaired


def _write_csv(path: Path, rows: list[list], tail: bytes = b"") -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(MELD_HEADER)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8") + tail)


def test_meld_csv_per_row_decoding_and_repairs_in_report(tmp_path):
    root = tmp_path / "raw"
    write_meld(root, bad_row=False)
    row = [1, "Café au lait, s\u2019il vous pla\u00eet", "Joey", "joy", "positive", 0, 0, 3, 7,
           "0", "1"]
    c1 = [2, "I\u0092m fine", "Ross", "neutral", "neutral", 0, 1, 3, 7, "0", "1"]
    tail = b'3,I\x92ll go,Monica,sadness,negative,0,2,3,7,0,1\r\n'
    _write_csv(root / "train_sent_emo.csv", [row, c1], tail)
    b = build("meld", "text", str(tmp_path / "tfds"), str(root))
    ds = b.as_data_source("train")
    text = {ex["id"].decode(): ex["text"].decode() for ex in (ds[i] for i in range(len(ds)))}
    assert text == {"train_dia0_utt0": "Café au lait, s’il vous plaît",
                    "train_dia0_utt1": "I’m fine", "train_dia0_utt2": "I’ll go"}
    rep = read_report(b)
    assert rep["repairs"] == {"c1_code_points": 1, "cp1252_bytes": 1}


def test_tokenizer_reads_typographic_quotes_as_ascii():
    assert split_words("Don’t “go”") == split_words("Don't \"go\"") == ["don't", '"', "go", '"']
    tok = Tokenizer.fit(["I’m here", "I'm there", "I‘m"])
    assert tok.encode("I’m")[0] == tok.encode("I'm")[0] == tok.index["i'm"]
    assert "i’m" not in tok.index
