"""`mmer predict`'s arguments, without a model: --text wins over a paired .txt (a note says
so), a directory stands for its files, a trailing stub window is not scored, and a repaired
transcript gets a one-line note."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from mmer_jax.errors import UsageError
from mmer_jax.serve import cli as serve_cli
from mmer_jax.serve.inputs import MediaSettings, plan, read_transcript

from .media import write_wav


def _args(run, files, **kw):
    base = dict(workdir=str(run), files=[str(f) for f in files], text=None, window=None,
                hop=None, max_duration=7200.0, max_windows=4096)
    return argparse.Namespace(**{**base, **kw})


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    clips = tmp_path / "clips"
    clips.mkdir()
    write_wav(clips / "a.wav", (np.ones(1600) * 1000).astype(np.int16))
    write_wav(clips / "b.wav", (np.ones(1600) * 1000).astype(np.int16))
    (clips / "a.txt").write_text("we got the house")
    (clips / "notes.json").write_text("{}")
    return tmp_path, clips


def test_text_option_wins_over_a_paired_transcript(run_dir, capsys):
    run, clips = run_dir
    files = [clips / "a.wav", clips / "a.txt"]
    assert serve_cli.check_predict_args(_args(run, files)) == [(str(files[0]), str(files[1]))]
    assert capsys.readouterr().err == ""
    pairs = serve_cli.check_predict_args(_args(run, files, text="so happy"))
    assert pairs == [(str(files[0]), None)]  # the .txt is neither the transcript nor predicted
    assert f"note: --text is the transcript of every file; {files[1]} not read" in (
        capsys.readouterr().err)


def test_a_directory_stands_for_its_files(run_dir, capsys, tmp_path):
    run, clips = run_dir
    pairs = serve_cli.check_predict_args(_args(run, [clips]))
    assert pairs == [(str(clips / "a.wav"), str(clips / "a.txt")), (str(clips / "b.wav"), None)]
    err = capsys.readouterr().err
    assert f"note: {clips}: a directory: its 3 file(s); 1 other file(s) left out, e.g. " \
           "notes.json" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match=f"^{empty}: a directory with no .*files in it$"):
        serve_cli.check_predict_args(_args(run, [empty]))
    (tmp_path / "README").write_text("x")  # a file without extension: named in the error
    with pytest.raises(UsageError, match=r"README: unsupported file type '\(no extension\)'"):
        serve_cli.check_predict_args(_args(run, [tmp_path / "README"]))


AUDIO = MediaSettings(("audio",), 16000, 4, max_audio_s=1.5)


@pytest.mark.parametrize("dur,window,hop,last,note", [
    (3.01, 1.5, 0.5, (1.5, 3.0), "; the last 0.01 s (under half a hop) is in no window"),  # issue
    (3.2, 1.5, 0.5, (1.5, 3.0), "; the last 0.20 s"),  # under half a hop: still dropped
    (3.3, 1.5, 0.5, (2.0, 3.3), None),  # 0.3 s of new input: kept
    (3.9, 2.0, 2.0, (2.0, 3.9), None),  # no overlap: the last window is all new input
    (1.0, 1.5, 0.5, (0.0, 1.0), None),  # shorter than one window: itself
])
def test_a_trailing_stub_window_is_not_scored(dur, window, hop, last, note):
    spans, how = plan(dur, AUDIO, window, hop, max_windows=100)
    assert spans[-1] == pytest.approx(last)
    assert all(b - a == pytest.approx(window) for a, b in spans[:-1])
    assert (note in how) if note else "no window" not in how


def test_a_repaired_transcript_gets_a_note(tmp_path, capsys):
    import sys

    cp = tmp_path / "talk.txt"
    cp.write_bytes("café naïve".encode("cp1252"))
    assert read_transcript(str(cp), "talk.txt", notes=sys.stderr) == "café naïve"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: talk.txt: transcript's encoding repaired "
                                               "(read as utf-8 with cp1252 for 2 bytes")
    ok = tmp_path / "ok.txt"
    ok.write_text("café", encoding="utf-8")
    assert read_transcript(str(ok), "ok.txt", notes=sys.stderr) == "café"
    assert capsys.readouterr().err == ""
