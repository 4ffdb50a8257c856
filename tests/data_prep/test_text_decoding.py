"""Issue 32, kind 1: one text decoder for every text the project reads (builders' CSVs and
manifests, ``mmer predict``'s ``.txt`` transcripts): BOM/UTF-16, cp1252, mojibake repaired and
counted, and an error naming the file and the encodings tried. Each fault: the issue's example and
a variant."""

import csv
import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402
from fixtures_text import MELD_HEADER, write_meld  # noqa: E402

from data_prep._common.report import CorpusError, read_report  # noqa: E402
from data_prep._common.text import TextDecodeError, decode  # noqa: E402
from data_prep.build import build  # noqa: E402
from mmer_jax.data.text import split_words  # noqa: E402
from mmer_jax.serve.inputs import InputError, MediaSettings  # noqa: E402
from mmer_jax.serve.inputs import decode as decode_input  # noqa: E402

CP1252_TRANSCRIPT = "I don’t know… café?"  # the example
CP1252_VARIANT = "Fünf € – „gut“, sagt Œdipus"  # every non-ASCII char a cp1252 byte
DOUBLE = "I don’t think so…"


def _double_encoded(text: str, via: str = "cp1252") -> bytes:
    """UTF-8 read once as ``via`` and saved again as UTF-8."""
    return text.encode("utf-8").decode(via).encode("utf-8")


# ---- the decoder ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [CP1252_TRANSCRIPT, CP1252_VARIANT])
def test_cp1252_file(text):
    out = decode(text.encode("cp1252"), "t.txt")
    assert out.text == text
    assert out.repairs["cp1252_bytes"] == sum(not c.isascii() for c in text)
    assert "cp1252" in out.encoding


@pytest.mark.parametrize("raw,encoding", [
    ("\ufeffSr No.,Utterance\n1,Ärger – “no”\n".encode("utf-16-le"), "utf-16-le (BOM)"),
    # variant: big-endian, no BOM (found by every second byte being NUL)
    ("Sr No.,Utterance\n1,Ärger – “no”\n".encode("utf-16-be"), "utf-16-be (no BOM"),
])
def test_utf16_with_and_without_bom(raw, encoding):
    out = decode(raw, "x.csv")
    assert out.text == "Sr No.,Utterance\n1,Ärger – “no”\n"
    assert out.encoding.startswith(encoding) and out.repairs == {"utf16_file": 1}


@pytest.mark.parametrize("raw", [
    _double_encoded(DOUBLE),  # the example: donâ€™t, soâ€¦
    _double_encoded(DOUBLE, via="latin-1"),  # variant: read as Latin-1 (C1 code points)
])
def test_double_encoded_utf8_is_repaired_and_counted(raw):
    out = decode(b"ok line\n" + raw + "\nplain café — fine\n".encode(), "m.csv")
    assert out.text == f"ok line\n{DOUBLE}\nplain café — fine\n"
    assert out.repairs["mojibake_lines"] == 1
    assert split_words(out.text.splitlines()[1])[:3] == ["i", "don't", "think"]


@pytest.mark.parametrize("raw,match", [
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", r"NUL bytes.*tried"),
    # variant: a UTF-16 byte-order mark followed by a lone surrogate
    (b"\xff\xfeA\x00\x00\xd8B\x00", r"not valid utf-16-le \(BOM\).*tried utf-16-le"),
])
def test_not_text_names_the_file_and_the_encodings(raw, match, tmp_path):
    with pytest.raises(TextDecodeError, match=match) as err:
        decode(raw, tmp_path / "notes.txt")
    assert str(tmp_path / "notes.txt") in str(err.value) and "\n" not in str(err.value)


# ---- mmer predict's .txt transcript --------------------------------------------------------------

def _settings():
    return MediaSettings(modalities=("text",), sample_rate=16000, max_frames=0)


@pytest.mark.parametrize("raw,want", [
    (CP1252_TRANSCRIPT.encode("cp1252"), CP1252_TRANSCRIPT),
    (("\ufeff" + CP1252_VARIANT).encode("utf-16-le"), CP1252_VARIANT),
])
def test_predict_reads_a_transcript_as_the_builders_do(raw, want, tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(raw)
    assert decode_input(str(path), _settings()).text == want
    assert "\ufffd" not in decode_input(str(path), _settings()).text


def test_predict_names_a_transcript_that_is_not_text(tmp_path):
    path = tmp_path / "upload123.txt"
    path.write_bytes(b"\x00\x01\x02binary\x00")
    with pytest.raises(InputError, match=r"^mine\.txt: not a text file") as err:
        decode_input(str(path), _settings(), shown_name="mine.txt")
    assert "upload123" not in str(err.value)  # the temp path is never shown


# ---- the folder builder's manifest ---------------------------------------------------------------

def _manifest_corpus(tmp_path: Path, manifest: bytes, name: str = "labels.csv") -> tuple:
    root = tmp_path / "corpus"
    for s in range(3):
        fx.write_wav(root / "clips" / f"spk{s}-a.wav", 0.05, 16000, freq=200 + 20 * s)
        fx.write_wav(root / "clips" / f"spk{s}-b.wav", 0.05, 16000, freq=400 + 20 * s)
    (root / name).write_bytes(manifest)
    spec = tmp_path / "m.json"
    spec.write_text(json.dumps({"name": "m", "classes": ["angry", "sad"],
                                "labels": {"Ärger": "angry", "Trauer": "sad"},
                                "speaker_regex": r"^spk(?P<speaker>\d+)-", "manifest": name}))
    return root, str(spec)


def _manifest_text(sep: str = ",") -> str:
    rows = [sep.join(["path", "label"])]
    for s in range(3):
        rows += [sep.join([f"clips/spk{s}-a.wav", "Ärger"]),
                 sep.join([f"clips/spk{s}-b.wav", "Trauer"])]
    return "\r\n".join(rows) + "\r\n"


@pytest.mark.parametrize("manifest,repairs", [
    (_manifest_text().encode("cp1252"), {"cp1252_bytes": 3}),  # the example (0xc4)
    ("\ufeff".encode("utf-16-le") + _manifest_text(", ").encode("utf-16-le"),
     {"utf16_file": 1}),  # variant: UTF-16 with ", " separators
])
def test_folder_manifest_in_cp1252_or_utf16(manifest, repairs, tmp_path):
    root, spec = _manifest_corpus(tmp_path, manifest)
    b = build("folder", spec, str(tmp_path / "tfds"), str(root))
    src = b.as_data_source("full")
    labels = {fx.text(ex["id"]): int(ex["label"]) for ex in (src[i] for i in range(len(src)))}
    assert labels == {f"clips/spk{s}-{k}": int(k == "b") for s in range(3) for k in "ab"}
    rep = read_report(b)
    assert rep["repairs"] == repairs
    assert rep["repaired_files"][next(iter(repairs))] == [str(root / "labels.csv")]


@pytest.mark.parametrize("manifest", [
    _manifest_text(", ").encode(),  # the example: header "path, label"
    _manifest_text(" ,\t").encode(),  # variant: spaces and tabs around the separators
])
def test_folder_manifest_fields_are_stripped(manifest, tmp_path):
    root, spec = _manifest_corpus(tmp_path, manifest)
    b = build("folder", spec, str(tmp_path / "tfds"), str(root))
    assert len(b.as_data_source("full")) == 6


def test_folder_manifest_that_is_not_text_names_the_file(tmp_path):
    root, spec = _manifest_corpus(tmp_path, b"\x00\x00\x00\x01\x00")
    with pytest.raises(CorpusError, match=r"labels\.csv: not a text file.*tried"):
        build("folder", spec, str(tmp_path / "tfds"), str(root))


# ---- MELD's CSVs ---------------------------------------------------------------------------------

def _meld_train_csv(text: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(MELD_HEADER)
    for i, t in enumerate([text, "Oh, come on."]):
        w.writerow([i + 1, t, "Ross", "joy", "positive", 0, i, 3, 7, "0", "1"])
    return buf.getvalue()


def _meld_texts(tmp_path: Path, train_csv: bytes):
    root = tmp_path / "raw"
    write_meld(root, bad_row=False)
    (root / "train_sent_emo.csv").write_bytes(train_csv)
    b = build("meld", "text", str(tmp_path / "tfds"), str(root))
    ds = b.as_data_source("train")
    return [fx.text(ds[i]["text"]) for i in range(len(ds))], read_report(b)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])  # Excel's (LE + BOM); variant BE
def test_meld_csv_saved_as_utf16(encoding, tmp_path):
    text = "Café – “sure”"
    raw = _meld_train_csv(text).encode(encoding)
    if encoding == "utf-16-be":
        raw = b"\xfe\xff" + raw
    texts, rep = _meld_texts(tmp_path, raw)
    assert texts == [text, "Oh, come on."]
    assert rep["repairs"]["utf16_file"] == 1


@pytest.mark.parametrize("via", ["cp1252", "latin-1"])  # the example; variant Latin-1
def test_meld_csv_double_encoded(via, tmp_path):
    texts, rep = _meld_texts(tmp_path, _double_encoded(_meld_train_csv(DOUBLE), via))
    assert texts == [DOUBLE, "Oh, come on."]
    assert rep["repairs"]["mojibake_lines"] == 1
    assert rep["repaired_files"]["mojibake_lines"] == ["train_sent_emo.csv"]


def test_meld_header_error_names_the_encoding(tmp_path):
    root = tmp_path / "raw"
    write_meld(root, bad_row=False)
    (root / "train_sent_emo.csv").write_bytes("a\tb\n1\t2\n".encode("utf-16"))
    with pytest.raises(CorpusError, match=r"train_sent_emo\.csv \(read as utf-16-le \(BOM\)\): "
                                          r"missing columns"):
        build("meld", "text", str(tmp_path / "tfds"), str(root))
