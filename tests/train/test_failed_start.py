"""A failed start leaves nothing (issue 33, Wrong 3 and 4): every check that can fail on the data
runs before the first write, a failure before the first training step removes what the start
wrote (lock file included), and a start of another config that never took a step does not block
the corrected command. None of these tests trains."""

import json
import os

import numpy as np
import pytest

from mmer_jax import cli
from mmer_jax import config as config_lib
from mmer_jax.errors import RunError, UsageError
from mmer_jax.train import run as run_lib

QS = "experiments/quickstart.py"
TINY = ["--config.data.config=tiny", "--config.train.progress=false"]


def _train(work, data_dir, *overrides):
    return cli.main(["train", "--config", QS, "--workdir", str(work), "--data_dir", data_dir,
                     *TINY, *overrides])


@pytest.mark.parametrize("existing", [False, True])
def test_batch_larger_than_the_train_split_writes_nothing(tmp_path, tiny_generated, capsys,
                                                          existing):
    """The issue's example: train.batch_size above the train split (64 examples of tiny)."""
    work = tmp_path / "w"
    if existing:
        work.mkdir()
        (work / "notes.txt").write_text("mine")
    assert _train(work, tiny_generated, "--config.train.batch_size=128") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "mmer: error: config key 'train.batch_size': 128 is larger than the train split (64 "
        "examples; variant 'audio'); set --config.train.batch_size=64 or smaller")
    if existing:  # the user's file stays; no config.json, variants/, vocab.json or .lock
        assert sorted(os.listdir(work)) == ["notes.txt"]
    else:
        assert not work.exists()


def test_a_variant_override_larger_than_the_split_is_named(tmp_path, tiny_generated, capsys):
    """Variant of the same fault: only one variant's batch (variant_overrides) is too large."""
    work = tmp_path / "w"
    code = _train(work, tiny_generated, "--config.train.batch_size=16",
                  '--config.variant_overrides={"fused": {"train": {"batch_size": 96}}}')
    assert code == 2
    assert "96 is larger than the train split (64 examples; variant 'fused'); set " \
           "--config.train.batch_size=64" in capsys.readouterr().err
    assert not work.exists()


def _debris(work, cfg, *, metrics: str = "") -> None:
    """What a start that died before its first step (killed while compiling, or an older
    version's failed start) leaves: config.json, an empty variant directory, vocab, lock."""
    run_lib.prepare_workdir(str(work), cfg)
    (work / "variants" / "audio").mkdir(parents=True)
    (work / "vocab.json").write_text("{}")
    (work / ".lock").write_text("123")
    if metrics:
        (work / "metrics.jsonl").write_text(metrics)


def test_a_start_that_never_stepped_does_not_block_the_corrected_config(
    tmp_path, tiny_generated, monkeypatch, capsys
):
    old = config_lib.load(QS, ["data.config=tiny", "train.batch_size=128"])
    new = config_lib.load(QS, ["data.config=tiny", "train.batch_size=16",
                               "train.progress=false"])
    work = tmp_path / "w"
    _debris(work, old)
    assert run_lib.never_stepped(str(work))
    started = {}

    def fake_train(cfg, workdir, pipeline, variants, t0, trainer_cls):
        started["config"] = json.loads((work / "config.json").read_text())
        return {"ok": True}

    monkeypatch.setattr(run_lib, "_train_variants", fake_train)
    assert run_lib.run(new, str(work), data_dir=tiny_generated) == {"ok": True}
    assert started["config"]["train"]["batch_size"] == 16  # the corrected config, stored
    assert "held a start of another config that never took a step" in capsys.readouterr().err


@pytest.mark.parametrize("progress", ["metrics", "checkpoint", "result"])
def test_a_run_that_took_a_step_is_still_refused(tmp_path, tiny_generated, progress):
    old = config_lib.load(QS, ["data.config=tiny", "train.lr=0.5"])
    work = tmp_path / "w"
    _debris(work, old, metrics='{"variant": "audio", "step": 1}\n' if progress == "metrics"
            else "")
    if progress == "checkpoint":
        (work / "variants" / "audio" / "ckpt" / "latest" / "4").mkdir(parents=True)
    if progress == "result":
        (work / "variants" / "audio" / "result.json").write_text("{}")
    assert not run_lib.never_stepped(str(work))
    new = config_lib.load(QS, ["data.config=tiny", "train.progress=false"])
    with pytest.raises(UsageError, match="holds a run of a different config"):
        run_lib.run(new, str(work), data_dir=tiny_generated)
    assert (work / "config.json").exists()  # nothing of it was removed


@pytest.mark.parametrize("error", [RunError("the loss diverged at step 0"), KeyboardInterrupt()])
def test_a_failure_before_the_first_step_removes_the_start(tmp_path, tiny_generated,
                                                           monkeypatch, error):
    """After config.json is written (the trainer's init or first compile fails, or Ctrl-C):
    the start is removed, so the next command starts afresh with any config."""
    cfg = config_lib.load(QS, ["data.config=tiny", "train.progress=false"])
    work = tmp_path / "w"

    def fail(cfg, workdir, *a):
        os.makedirs(os.path.join(workdir, "variants", "audio", "ckpt"))
        raise error

    monkeypatch.setattr(run_lib, "_train_variants", fail)
    with pytest.raises(type(error)):
        run_lib.run(cfg, str(work), data_dir=tiny_generated)
    assert not work.exists()


def _audio_only_corpus(root, speakers=3, per_class=2):
    import soundfile as sf

    t = np.arange(4000) / 16000
    for label, f0 in (("angry", 300.0), ("sad", 150.0)):
        for s in range(speakers):
            for j in range(per_class):
                path = root / label / f"{s:02d}_{j}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, 0.3 * np.sin(2 * np.pi * (f0 + 10 * s) * t), 16000,
                         subtype="PCM_16")


def test_quickstart_on_an_audio_only_corpus_names_the_missing_modalities(tmp_path, capsys):
    """The issue's example: the quickstart config on a folder corpus of audio only ended in
    `KeyError: 'text'` after writing the workdir; now one line before anything is written."""
    pytest.importorskip("soundfile")
    root = tmp_path / "mine"
    _audio_only_corpus(root)
    spec = tmp_path / "mine.json"
    spec.write_text(json.dumps({"name": "mine", "classes": ["angry", "sad"],
                                "speaker_regex": r"^(?P<speaker>\d+)_"}))
    work = tmp_path / "w"
    code = cli.main(["train", "--config", QS, "--workdir", str(work), "--data_dir",
                     str(tmp_path / "tfds"), "--config.data.corpus=folder",
                     f"--config.data.config={spec}", f"--config.data.manual_dir={root}",
                     "--config.data.fold=1"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "mmer: error: this config asks for modalities 'frames' (variants fused, video); 'text' "
        f"(variants fused, text), which corpus 'folder' (config {spec}) does not store (its "
        "modalities: audio); keep only the variants it can train (audio), e.g. "
        "--config.variants='{\"audio\": [\"audio\"]}' --config.primary_variant=audio; or train "
        "a config whose variants use only audio, e.g. --config "
        "experiments/speech_recipe_folder.py (README.md, 'Bringing a corpus we have no "
        "builder for')")
    assert not work.exists()
    assert not (tmp_path / "tfds").exists()  # refused before the corpus was even built


@pytest.mark.parametrize("num_folds,protocol", [(0, "'loso' protocol: one run per fold 1..K"),
                                                (2, "'speakers2' protocol: one run per fold")])
def test_the_suggestion_names_a_fold_when_the_corpus_stores_only_folds(tmp_path, capsys,
                                                                       num_folds, protocol):
    """Without data.fold, the quickstart on a folder corpus: the suggested command adds
    --config.data.fold=1 and names the fold protocol (it used to end in a second error, "no
    'train' split")."""
    pytest.importorskip("soundfile")
    root = tmp_path / "mine"
    _audio_only_corpus(root)
    spec = tmp_path / "mine.json"
    spec.write_text(json.dumps({"name": "mine", "classes": ["angry", "sad"],
                                "speaker_regex": r"^(?P<speaker>\d+)_", "num_folds": num_folds}))
    code = cli.main(["train", "--config", QS, "--workdir", str(tmp_path / "w"), "--data_dir",
                     str(tmp_path / "tfds"), "--config.data.corpus=folder",
                     f"--config.data.config={spec}", f"--config.data.manual_dir={root}"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert ("--config.primary_variant=audio --config.data.fold=1 (the corpus holds no train "
            "split, only the folds of its " + protocol) in err, err


def test_the_fold_suggestion_on_a_built_folder_corpus_reads_its_folds(tmp_path, capsys):
    """Variant: the corpus built first; the protocol and its fold count come from folds.json,
    and the suggested command, followed, gets past the data checks."""
    pytest.importorskip("soundfile")
    root = tmp_path / "mine"
    _audio_only_corpus(root, speakers=4)
    spec = tmp_path / "mine.json"
    spec.write_text(json.dumps({"name": "mine", "classes": ["angry", "sad"],
                                "speaker_regex": r"^(?P<speaker>\d+)_"}))
    tfds_dir = str(tmp_path / "tfds")
    assert cli.main(["data", "build", "folder", "--config", str(spec), "--manual_dir", str(root),
                     "--data_dir", tfds_dir]) == 0
    base = ["train", "--config", QS, "--workdir", str(tmp_path / "w"), "--data_dir", tfds_dir,
            "--config.data.corpus=folder", f"--config.data.config={spec}"]
    capsys.readouterr()
    assert cli.main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert ("--config.primary_variant=audio --config.data.fold=1 (the corpus holds no train "
            "split, only the folds of its 'loso' protocol: one run per fold 1..4)") in err, err
    suggested = ["--config.variants={\"audio\": [\"audio\"]}", "--config.primary_variant=audio",
                 "--config.data.fold=1", "--config.train.epochs=1", "--config.train.batch_size=4"]
    assert cli.main([*base, *suggested]) == 0, capsys.readouterr().err


def test_a_face_system_on_a_corpus_without_face_crops(tmp_path, tiny_generated):
    """Variant: S003's CREMA-D config (audio, frames, face) pointed at the generated corpus,
    which stores audio, frames and text but no face crops."""
    cfg = config_lib.load("experiments/s003_crema_d.py", [
        "data.corpus=generated_emotion", "data.config=tiny", "data.manual_dir=''"])
    with pytest.raises(UsageError) as exc:
        run_lib.run(cfg, str(tmp_path / "w"), data_dir=tiny_generated)
    assert str(exc.value) == (
        "this config asks for modality 'face' (variants face, fused), which corpus "
        "'generated_emotion' (config tiny) does not store (its modalities: audio, frames, "
        "text); keep only the variants it can train (audio, frames), e.g. "
        "--config.variants='{\"audio\": [\"audio\"]}' --config.primary_variant=audio; or "
        "train a config whose variants use only audio, frames, text")
    assert not (tmp_path / "w").exists()


def test_a_removed_lock_file_is_made_again_and_still_excludes(tmp_path):
    """After a failed start removed its lock file, the next process makes and holds a new one
    (a process that had opened the removed file re-opens the new one: WorkdirLock.__enter__)."""
    first = run_lib.WorkdirLock(str(tmp_path)).__enter__()
    first.remove()
    first.__exit__()
    with run_lib.WorkdirLock(str(tmp_path)):
        assert (tmp_path / ".lock").exists()
        with pytest.raises(UsageError, match="in use by another mmer process"):
            run_lib.WorkdirLock(str(tmp_path)).__enter__()
