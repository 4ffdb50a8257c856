"""What a run writes besides results: TensorBoard event files per variant, per-speaker scores in
results.json and report.md; `mmer eval` locked against a training process; corpus names in
either spelling (issue 17)."""

import glob
import json
import os
import struct

import numpy as np
import pytest

from mmer_jax.errors import UsageError

from .helpers import only_variant, tiny_config


def read_scalars(directory: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files in ``directory``: {tag: [(step, value)]}
    (TFRecord framing: length, masked CRC, Event proto, CRC)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list] = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        data = open(path, "rb").read()
        pos = 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
            pos += 12 + n + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


@pytest.fixture(scope="module")
def run_dir(tiny_generated, tmp_path_factory):
    from mmer_jax.train.run import run

    small = {"train.epochs": 1, "train.log_every": 2, "data.max_tokens": 8,
             "model.encoders.text.embed_dim": 8, "model.encoders.text.hidden": 8,
             "model.head_hidden": 8}
    cfg = only_variant(tiny_config(tiny_generated, **small), "text", ["text"])
    cfg.model.modalities = ["text"]
    work = str(tmp_path_factory.mktemp("run"))
    return work, run(cfg, work)


def test_tensorboard_event_files_hold_train_and_validation_scalars(run_dir):
    work, _ = run_dir
    tb = os.path.join(work, "tensorboard", "text")
    scalars = read_scalars(tb)
    records = [json.loads(line) for line in open(os.path.join(work, "metrics.jsonl"))]
    for split, key in (("train", "loss"), ("train", "accuracy"), ("validation", "loss"),
                       ("validation", "accuracy"), ("validation", "weighted_f1"),
                       ("validation", "uar")):
        want = [(r["step"], r[key]) for r in records if r["split"] == split]
        got = scalars[f"{split}/{key}"]
        assert [s for s, _ in got] == [s for s, _ in want]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=1e-6)
    assert len(scalars["validation/uar"]) == 1  # one per epoch


def test_metrics_log_writes_tensorboard_on_process_0_and_purges_replayed_steps(tmp_path):
    from mmer_jax.train.progress import MetricsLog

    log = MetricsLog(str(tmp_path / "metrics.jsonl"), "fused")
    log.truncate(-1)
    log.append("train", 1, 1, loss=2.0, accuracy=0.5, examples_per_s=None)
    log.append("validation", 1, 1, loss=1.5, uar=float("nan"))
    log.close()
    scalars = read_scalars(str(tmp_path / "tensorboard" / "fused"))
    assert scalars == {"train/loss": [(1, 2.0)], "train/accuracy": [(1, 0.5)],
                       "validation/loss": [(1, 1.5)]}  # None and NaN are left out
    assert json.loads(open(tmp_path / "metrics.jsonl").readline())["examples_per_s"] is None


def test_per_speaker_scores_in_results_and_report(run_dir, tiny_generated):
    work, results = run_dir
    with open(os.path.join(work, "results.json")) as f:
        stored = json.load(f)
    assert stored["test"]["per_speaker"] == results["test"]["per_speaker"]
    for split in ("test", "validation"):
        m = stored[split]
        by = m["per_speaker"]
        assert sum(s["n"] for s in by.values()) == stored["protocol"]["examples"][split] == 16
        # The examples' overall accuracy is the size-weighted mean of the speakers'.
        acc = sum(s["n"] * s["accuracy"] for s in by.values()) / 16
        assert acc == pytest.approx(m["accuracy"], abs=1e-12)
    assert list(stored["test"]["per_speaker"]) == ["spk03"]  # tiny: one test speaker
    assert list(stored["validation"]["per_speaker"]) == ["spk02"]
    report = open(os.path.join(work, "report.md")).read()
    assert "## Per speaker (%)" in report
    t = stored["test"]["per_speaker"]["spk03"]
    assert (f"| Test | spk03 | 16 | {100 * t['accuracy']:.1f} | {100 * t['uar']:.1f} |"
            in report)


def test_per_speaker_metrics_by_hand():
    from mmer_jax.train.metrics import per_speaker_metrics

    y = np.array([0, 1, 1, 0, 2, 0])
    p = np.array([0, 1, 0, 1, 2, 0])
    w = np.array([1, 1, 1, 1, 1, 0])  # the last row pads the batch
    out = per_speaker_metrics(y, p, ["b", "a", "a", "b", "b"], weight=w)
    assert out == {"a": {"n": 2, "accuracy": 0.5, "uar": 0.5},
                   "b": {"n": 3, "accuracy": pytest.approx(2 / 3), "uar": 0.75}}
    assert per_speaker_metrics(y, p, ["a"] * 6, weight=w) is None  # order unknown


def test_eval_refuses_a_workdir_in_training(run_dir, capsys):
    from mmer_jax import cli
    from mmer_jax.train.run import WorkdirLock

    work, _ = run_dir
    with WorkdirLock(work):  # as a training process holds it
        assert cli.main(["eval", "--workdir", work]) == 2
    err = capsys.readouterr().err
    assert f"--workdir {work!r} is in use by another mmer process (pid {os.getpid()}" in err


def test_corpus_names_in_either_spelling(tmp_path, capsys):
    from mmer_jax import cli
    from mmer_jax import config as config_lib
    from mmer_jax.reproduce import harness

    cfg = config_lib.load("experiments/quickstart.py", ["data.corpus=generated"])
    assert cfg.data.corpus == "generated_emotion" and cfg.data.config == "default"
    cfg = config_lib.load("experiments/s002_iemocap_text.py", ["data.corpus=iemocap_text"])
    assert (cfg.data.corpus, cfg.data.config) == ("iemocap", "text")
    with pytest.raises(UsageError, match="builder config '4class' was given"):
        config_lib.load("experiments/quickstart.py",
                        ["data.corpus=iemocap_text", "data.config=4class"])
    assert config_lib.corpus_alias("EmoDB") == ("emodb", None)
    assert config_lib.experiment_corpus_key("generated_emotion") == "generated"
    assert config_lib.experiment_corpus_key("iemocap/text") == "iemocap_text"
    assert harness.find_configs("s003", config_lib.experiment_corpus_key("generated_emotion")) \
        == {"generated": os.path.join(harness.REPO, "experiments", "s003_generated.py")}
    # mmer data build: the experiment key works as the corpus name.
    assert cli.main(["data", "build", "generated", "--config", "tiny",
                     "--data_dir", str(tmp_path)]) == 0
    assert "generated_emotion/tiny" in capsys.readouterr().out
    # mmer reproduce --corpus: the registered name works as the experiment key.
    with pytest.raises(UsageError, match="s003/generated"):
        harness.reproduce("s003", corpus="generated_emotion", seeds=1,
                          workdir=str(tmp_path / "w"),
                          overrides=["data.build_if_missing=false",
                                     f"data.data_dir={tmp_path / 'none'}"])
