"""Parallel builds (``num_workers``) write byte-identical files to serial ones.

Each corpus is built twice from the same ``manual_dir``, with 1 and with 2 worker processes; the
array_record files, ``build_report.json`` and ``folds.json`` must be equal byte for byte.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep._common import parallel  # noqa: E402
from data_prep._common.media import MediaError  # noqa: E402

COMPARED = ("build_report.json", "folds.json")


def _files(builder) -> dict[str, bytes]:
    root = Path(os.fspath(builder.data_dir))
    out = {p.name: p.read_bytes() for p in sorted(root.iterdir())
           if ".array_record" in p.name or p.name in COMPARED}
    assert any(".array_record" in n for n in out), sorted(os.listdir(root))
    return out


def _build_both(tmp_path, name, config, manual_dir=None):
    from data_prep.build import build

    got = {}
    for workers in (1, 2):
        builder = build(name, config, str(tmp_path / f"w{workers}"),
                        str(manual_dir) if manual_dir else None, num_workers=workers)
        got[workers] = _files(builder)
    return got


def _assert_identical(got) -> None:
    one, two = got[1], got[2]
    assert sorted(one) == sorted(two)
    for fname in one:
        assert one[fname] == two[fname], f"{fname} differs between 1 and 2 workers"


def test_emodb_layout(tmp_path):
    from data_prep.emodb import emodb

    wav = tmp_path / "emodb" / "wav"
    for i, spk in enumerate(emodb.SPEAKERS):
        for j in range(2):
            fx.write_wav(wav / f"{spk}a0{j + 1}{'WLEAFTN'[(i + j) % 7]}a.wav", 0.1, 22050,
                         freq=200 + 10 * i + 3 * j)
    fx.write_zero_length(wav / "03a05Wb.wav")  # skips keep their place in the report
    fx.write_corrupt(wav / "08a05Ab.wav")
    got = _build_both(tmp_path, "emodb", "default", tmp_path / "emodb")
    _assert_identical(got)
    assert b'"skipped_total": 2' in got[2]["build_report.json"]


def test_ravdess_av_and_crema_d_layouts(tmp_path):
    """RAVDESS av (mp4: audio, frames, face detection) and CREMA-D audio (wav + a bad file)."""
    rav = tmp_path / "ravdess"
    for a in (1, 2, 17, 21):
        fx.write_mp4(rav / f"Actor_{a:02d}" / f"01-01-0{a % 8 + 1}-01-01-01-{a:02d}.mp4",
                     seconds=0.3, fps=10, size=(90, 160), face=a % 2 == 0)
    fx.write_mp4(rav / "Actor_02" / "01-01-03-02-01-02-02.mp4", seconds=0.3, fps=10,
                 size=(90, 160), freq=500.0)
    _assert_identical(_build_both(tmp_path / "r", "ravdess", "av", rav))

    crema = tmp_path / "crema_d" / "AudioWAV"
    for i, a in enumerate(("1001", "1002", "1074", "1083")):
        for k, emo in enumerate(("ANG", "SAD")):
            fx.write_wav(crema / f"{a}_IEO_{emo}_HI.wav", 0.1, 16000, freq=200 + 20 * i + 7 * k)
    fx.write_truncated_wav(crema / "1002_DFA_ANG_LO.wav", 0.2, 16000)
    _assert_identical(_build_both(tmp_path / "c", "crema_d", "audio", tmp_path / "crema_d"))


def test_generated_tiny(tmp_path, tiny_generated):
    from data_prep.build import build

    serial = build("generated_emotion", "tiny", tiny_generated)  # built with 1 worker
    two = build("generated_emotion", "tiny", str(tmp_path), num_workers=2)
    _assert_identical({1: _files(serial), 2: _files(two)})


def _square(x):
    if x == 3:
        raise MediaError("three: unusable")
    return x * x


def _pid(_):
    return os.getpid()


def test_ordered_map_keeps_order_and_turns_media_errors_into_failures():
    for workers in (1, 2):
        out = list(parallel.ordered_map(_square, range(7), workers, chunksize=2))
        assert [r if not isinstance(r, parallel.Failed) else r.reason for r in out] == [
            0, 1, 4, "three: unusable", 16, 25, 36]
    try:  # the work really runs in other processes
        assert os.getpid() not in set(parallel.ordered_map(_pid, range(4), 2))
        assert set(parallel.ordered_map(_pid, range(4), 1)) == {os.getpid()}
    finally:
        parallel.shutdown()


def test_resolve_workers():
    assert parallel.resolve_workers(None) == 1
    assert parallel.resolve_workers(3) == 3
    assert parallel.resolve_workers(0) >= 1
    with pytest.raises(ValueError, match="num_workers"):
        parallel.resolve_workers(-1)


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("MMER_PROGRESS", "1")
    assert parallel.show_progress()
    monkeypatch.setenv("MMER_PROGRESS", "0")
    assert not parallel.show_progress()


def test_meld_av_layout(tmp_path):
    """MELD av: clips decoded in workers, a missing clip skipped in its place."""
    from fixtures_text import write_meld

    write_meld(tmp_path / "meld", clips=True, bad_row=False)
    _assert_identical(_build_both(tmp_path / "m", "meld", "av", tmp_path / "meld"))


def test_iemocap_av_layout(tmp_path):
    """IEMOCAP av: one dialogue (wavs + .avi) per work item, a missing .avi skipped."""
    from fixtures_text import write_iemocap_release

    root = tmp_path / "iemocap"
    write_iemocap_release(root, avi=True, missing_wav=None)
    (root / "Session1" / "dialog" / "avi" / "DivX" / "Ses01F_impro01.avi").unlink()
    _assert_identical(_build_both(tmp_path / "i", "iemocap", "4class_av", root))
