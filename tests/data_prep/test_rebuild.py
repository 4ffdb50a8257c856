"""Fault 4 (rebuilding), by kind in ``data_prep.build``: ``--force`` rebuilds in one go and never
leaves less than before; a reuse names the build it reused, and a changed manual_dir refuses."""

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_text import write_meld  # noqa: E402

from data_prep._common.report import CorpusError  # noqa: E402
from data_prep.build import BuildError, build  # noqa: E402


def _drop_train_rows(root: Path, keep: int) -> None:
    path = root / "train_sent_emo.csv"
    rows = list(csv.reader(path.open(encoding="cp1252", newline="")))
    with path.open("w", encoding="cp1252", newline="") as f:
        csv.writer(f).writerows(rows[:1 + keep])


def test_force_rebuilds_in_one_go_and_reuse_notices_changes(tmp_path, capsys):
    raw, tfds_dir = tmp_path / "raw", str(tmp_path / "tfds")
    write_meld(raw, bad_row=False)
    _drop_train_rows(raw, 2)  # the user's first, incomplete copy
    b = build("meld", "text", tfds_dir, str(raw))
    assert len(b.as_data_source("train")) == 2
    write_meld(raw, bad_row=False)  # the missing rows restored
    # A build that no longer matches its manual_dir is refused, never reused (issue 32).
    with pytest.raises(BuildError, match=r"does not reflect manual_dir.*train_sent_emo.csv"):
        build("meld", "text", tfds_dir, str(raw))
    capsys.readouterr()
    b = build("meld", "text", tfds_dir)  # without manual_dir: the build as it is
    assert "reusing meld/text built" in capsys.readouterr().err
    assert len(b.as_data_source("train")) == 2
    # --force: one call, the new data, and nothing left behind.
    b = build("meld", "text", tfds_dir, str(raw), force=True)
    assert len(b.as_data_source("train")) == 5
    assert not [p for p in Path(tfds_dir).iterdir() if p.name.startswith(".mmer-rebuild")]
    capsys.readouterr()
    build("meld", "text", tfds_dir, str(raw))
    err = capsys.readouterr().err
    assert "reusing meld/text" in err and "changed" not in err
    assert f"from {raw} (" in err and " files) in " in err  # a manual_dir build counts its files


def test_cli_says_reused_not_written_for_a_generated_corpus(tmp_path, capsys):
    """The issue's example: a second `mmer data build` printed "reusing ... (0 files)" and
    "written to ..."; now "(generated)" and "reused DIR"."""
    from mmer_jax.cli import main

    argv = ["data", "build", "generated", "--config", "tiny", "--data_dir", str(tmp_path)]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "\nwritten to " in first and "\nreused " not in first
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "reusing generated_emotion/tiny built " in err and " (generated) in " in err
    assert "files)" not in err
    assert "\nreused " in out and "written to" not in out


def test_failed_forced_rebuild_keeps_the_previous_build(tmp_path):
    raw, tfds_dir = tmp_path / "raw", str(tmp_path / "tfds")
    write_meld(raw, bad_row=False)
    b = build("meld", "text", tfds_dir, str(raw))
    (raw / "dev_sent_emo.csv").unlink()
    with pytest.raises(CorpusError, match="dev_sent_emo.csv"):
        build("meld", "text", tfds_dir, str(raw), force=True)
    again = build("meld", "text", tfds_dir)  # reused, intact
    assert again.data_dir == b.data_dir and len(again.as_data_source("train")) == 5
    assert not [p for p in Path(tfds_dir).iterdir() if p.name.startswith(".mmer-rebuild")]


def test_force_twice_on_a_generated_corpus(tmp_path):
    d = str(tmp_path / "tfds")
    build("generated_emotion", "tiny", d)
    b = build("generated_emotion", "tiny", d, force=True)
    b = build("generated_emotion", "tiny", d, force=True)
    assert len(b.as_data_source("test")) > 0
