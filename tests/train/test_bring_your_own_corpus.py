"""README.md's "Bringing a corpus we have no builder for" example, run as written (issue 33): on a
generated folder corpus of 4 speakers, the spec, the build, one speech-recipe run per
leave-one-speaker-out fold and `mmer compare`. Paths point into tmp_path and each run trains one
epoch; nothing else of the commands changes. The whole example trains 4 runs (minutes: slow);
the default suite runs it with `--print-config` on the train commands (the spec, the build and
the config with the README's overrides resolve) and without the comparison."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _readme_block() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- BEGIN example:own-corpus -->\n```bash\n(.*?)```\n"
                      r"<!-- END example:own-corpus -->", text, re.S)
    assert block, "README.md lost its own-corpus example"
    return block.group(1)


def _write_corpus(root: Path) -> None:
    """<Label>/<speaker>_<n>.wav: 4 speakers x 4 classes x 3 clips, the angry ones in `Wut/`
    (the spec's `labels` maps it); each class a tone of its own pitch and loudness."""
    sf = pytest.importorskip("soundfile")
    t = np.arange(8000) / 16000
    rng = np.random.default_rng(0)
    for folder, f0, amp in (("Wut", 320.0, 0.5), ("calm", 140.0, 0.1), ("happy", 260.0, 0.4),
                            ("sad", 120.0, 0.2)):
        for spk in range(4):
            for j in range(3):
                x = amp * np.sin(2 * np.pi * (f0 + 7 * spk + 3 * j) * t)
                x = x + 0.01 * rng.standard_normal(t.size)
                path = root / folder / f"{spk + 10}_{j}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, x.astype(np.float32), 16000, subtype="PCM_16")


def _run_example(tmp_path, *changes) -> subprocess.CompletedProcess:
    if shutil.which("mmer") is None:
        pytest.skip("the mmer command is not installed (pip install -e .)")
    corpus = tmp_path / "corpora" / "mine"
    _write_corpus(corpus)
    script = _readme_block()
    for old, new in (("~/corpora/mine", str(corpus)),
                     ("experiments/", f"{REPO}/experiments/"), *changes):
        assert old in script, old
        script = script.replace(old, new)
    env = {**os.environ, "MMER_DATA_DIR": str(tmp_path / "tfds"), "MMER_PROGRESS": "0"}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((tmp_path / "my_corpus.json").read_text())["labels"] == {"Wut": "angry"}
    return out


def test_readme_own_corpus_example_resolves(tmp_path):
    out = _run_example(
        tmp_path, ("--config.train.batch_size=8", "--config.train.batch_size=8 --print-config"),
        ("mmer compare runs/", "echo runs/"))
    configs = [json.loads(c) for c in re.findall(r"^\{.*?^\}", out.stdout, re.S | re.M)]
    assert [c["data"]["fold"] for c in configs] == [1, 2, 3, 4]
    for c in configs:
        assert c["data"]["corpus"] == "folder" and c["data"]["config"] == "my_corpus.json"
        assert c["data"]["fold_protocol"] == "loso" and c["train"]["batch_size"] == 8
        assert c["variants"] == {"audio": ["audio"]}
    report = next((tmp_path / "tfds").rglob("build_report.json"))
    assert len(json.loads(report.read_text())["notes"]["folds"]["loso"]["speakers"]) == 4


@pytest.mark.slow
def test_readme_own_corpus_example(tmp_path):
    out = _run_example(tmp_path, ("--config.train.batch_size=8",
                                  "--config.train.batch_size=8 --config.train.epochs=1"))
    for k in range(1, 5):
        results = json.loads((tmp_path / "runs" / f"mine_fold{k}" / "results.json").read_text())
        assert results["corpus"] == "folder" and results["modalities"] == ["audio"]
        assert results["protocol"]["classes"] == ["angry", "calm", "happy", "sad"]
        assert results["protocol"]["fold"] == f"loso {k}/4"
        assert results["protocol"]["speaker_independent"] is True
    # `mmer compare` printed one row per fold's run.
    assert sum(f"mine_fold{k}" in out.stdout for k in range(1, 5)) == 4, out.stdout
