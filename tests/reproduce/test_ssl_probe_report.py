"""The reproduction report of a pretrained-encoder system (``ssl_probe``): the encoder's record, the
runs' softmax layer weights (table, JSON, PNG) and other encoders' figures beside ours, from
hand-written run directories; reports of runs without them are unchanged."""

import glob
import json
import os

import numpy as np
import pytest

from mmer_jax.errors import RunError
from mmer_jax.reproduce import harness
from mmer_jax.reproduce.launch import read_results

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSES = ["anger", "boredom", "neutral"]
SHA = "d3039b31abc901977b4c4801c414159b46a325fbc00094e144a03d25405e308e"
# (fold, seed) -> the run's layer weights over 3 hidden states.
WEIGHTS = {(1, 0): [0.2, 0.5, 0.3], (1, 1): [0.4, 0.3, 0.3],
           (2, 0): [0.1, 0.6, 0.3], (2, 1): [0.3, 0.6, 0.1]}
PLAN = {"protocol": "lso", "description": "EmoDB leave-two-speakers-out", "num_folds": 2,
        "folds": [1, 2], "speaker_independent": True, "speakers": {}}


@pytest.fixture
def encoder_dir(tmp_path):
    """An import's ``encoder.json`` (2 layers: 3 hidden states); no weights are needed."""
    d = tmp_path / "whisper-base-d3039b31abc9"
    d.mkdir()
    (d / "encoder.json").write_text(json.dumps({
        "format_version": 1, "architecture": "whisper", "parameters": 1234,
        "config": {"encoder_layers": 2, "d_model": 8},
        "source": {"format": "ctranslate2", "path": "/src/whisper-base", "kind": "WhisperSpec",
                   "sha256": SHA, "files": [{"name": "model.bin", "bytes": 145217532,
                                             "sha256": "d01c3014881c9c6f3133c182f3d2887e"}]}}))
    return str(d)


def _cfg(encoder: str):
    from mmer_jax import config as config_lib

    return config_lib.load(os.path.join(REPO, "experiments", "ssl_probe_emodb.py"),
                           [f"data.encoder={encoder}", "data.encoder_store=pooled"])


def _write_run(d, fold, seed, weights=None):
    """A finished run's ``results.json`` as a run writes it, ``model_summary`` when given, read
    back as the harness does (``_fold`` added unless ``fold`` is 0: a single split)."""
    acc = 0.5 + 0.1 * fold + 0.01 * seed
    m = {"accuracy": acc, "weighted_f1": acc, "macro_f1": acc, "uar": acc,
         "per_class": {c: {"recall": acc, "f1": acc, "precision": acc, "support": 2}
                       for c in CLASSES},
         "confusion": np.eye(3, dtype=int).tolist()}
    res = {"system": "ssl_probe", "corpus": "emodb", "task": "classification",
           "variant": "encoder", "modalities": ["encoder_feat"],
           "protocol": {"seed": seed, "classes": CLASSES, "split": f"fold {fold}",
                        "examples": {"train": 8, "validation": 2, "test": 6},
                        "selection": "best validation uar @ epoch 3"},
           "test": m, "validation": m, "environment": {"device": "cpu", "device_count": 1},
           "timing": {"wall_s": 1.0, "train_examples_per_s": 10.0, "train_wall_s": 1.0},
           "num_params": 10, "best_epoch": 3}
    if weights is not None:
        res["model_summary"] = {"layer_weights": weights}
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(res, f)
    out = read_results(str(d))
    if fold:
        out["_fold"] = fold
    return out


def _fold_report(tmp_path, cfg, weights=WEIGHTS, system="ssl_probe"):
    runs = [_write_run(tmp_path / "runs" / f"lso_fold{k}" / f"seed{s}", k, s, weights.get((k, s)))
            for k in (1, 2) for s in (0, 1)]
    folds = harness.fold_summary(PLAN, runs, seeds=2)
    out = str(tmp_path / "reports")
    report = harness.build_report(system, "emodb", "experiments/ssl_probe_emodb.py", cfg, runs,
                                  out, 0.0, folds=folds, stem="emodb_lso_folds")
    return report, harness.write_outputs(report, out)


def test_fold_report_has_layer_weights_encoder_and_context(tmp_path, encoder_dir):
    report, paths = _fold_report(tmp_path, _cfg(encoder_dir))
    # JSON: per run, per fold the mean over seeds, the mean ± std over the folds.
    lw = json.load(open(paths["json"]))["layer_weights"]
    assert lw["states"] == 3 and lw["runs_total"] == 4
    assert [(p["fold"], p["seed"], p["weights"]) for p in lw["runs"]] == [
        (k, s, w) for (k, s), w in WEIGHTS.items()]
    assert [f["fold"] for f in lw["per_fold"]] == [1, 2]
    assert lw["per_fold"][0]["mean"] == pytest.approx([0.3, 0.4, 0.3])
    assert lw["per_fold"][1]["mean"] == pytest.approx([0.2, 0.6, 0.2])
    assert lw["mean_over_folds"] == pytest.approx([0.25, 0.5, 0.25])
    assert lw["std_over_folds"] == pytest.approx([0.0707107, 0.1414214, 0.0707107], abs=1e-6)
    assert lw["mean_over_runs"] == pytest.approx([0.25, 0.5, 0.25])
    # The plot is a PNG beside the report.
    png = os.path.join(os.path.dirname(paths["json"]), "emodb_lso_folds_layer_weights.png")
    assert paths["layer_weights_png"] == png and lw["png"] == os.path.basename(png)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    md = open(paths["md"]).read()
    for text in ("## Layer weights (softmax weight per hidden state)",
                 "| Hidden state | Fold 1 | Fold 2 | Mean ± std over folds |",
                 "| 0 (input embedding) | 0.300 | 0.200 | 0.250 ± 0.071 |",
                 "| 2 (last layer) | 0.300 | 0.200 | 0.250 ± 0.071 |",
                 "Largest mean weight: state 1 (0.500)",
                 "![layer weights](emodb_lso_folds_layer_weights.png)",
                 # the encoder, named with its checkpoint hash and the cache's store mode
                 "## Encoder", f"| Source sha256 | `{SHA}` (the sha256 of the source files'",
                 "| Source file `model.bin` | 145,217,532 bytes, sha256 `d01c3014",
                 "| Architecture | whisper (1,234",
                 f"| Import directory | `{encoder_dir}` |",
                 "| Source format | ctranslate2 (WhisperSpec), imported from `/src/whisper-base` |",
                 "| Hidden states | 3 (0 = the input embedding, 2 = the last layer) |",
                 "| Cache store (`data.encoder_store`) | pooled ",
                 "## Other encoders and protocols (context, test, %)"):
        assert text in md, text
    # Sections in order: encoder after the protocol, context and weights after paper vs ours.
    order = [md.index(t) for t in ("## Protocol", "## Encoder", "## Folds", "## Paper vs ours",
                                   "## Other encoders", "## Layer weights", "## Per class")]
    assert order == sorted(order)
    assert report["encoder"]["source_sha256"] == SHA and report["encoder"]["store"] == "pooled"


def test_context_rows_name_encoder_and_protocol_never_as_ours(tmp_path, encoder_dir):
    report, paths = _fold_report(tmp_path, _cfg(encoder_dir))
    md = open(paths["md"]).read()
    section = md.split("## Other encoders and protocols", 1)[1].split("\n## ", 1)[0]
    rows = {line.split(" | ")[0]: line for line in section.splitlines() if line.startswith("| ")}
    ours = rows["| **ssl_probe (this reproduction)**"]
    assert "whisper, frozen, all 3 hidden states" in ours and "| ours |" in ours
    assert "| 65.5 ± 7.1 |" in ours  # UAR: mean ± std over the 2 fold means (0.605, 0.705)
    wavlm = rows["| wavlm_large_emobox (published benchmark)"]
    assert "WavLM Large" in wavlm and "speakers overlap" in wavlm
    assert "| other (`emobox`) | 92.6 | 92.7 | 92.6 |" in wavlm
    probe = rows["| whisper_base_last_layer_logreg (measured for this project)"]
    assert "last encoder layer only" in probe
    assert "| same test speakers per fold as ours (`lso`) | 73.2 ± 3.3 | — | — |" in probe
    floors = [line for line in section.splitlines()
              if line.startswith("| utterance_stats_classical")]
    assert len(floors) == 2 and "58.6 ± 3.5" in floors[0] and "other (`emobox`)" in floors[1]
    # Every row of ANCHORS.md's figures, and only those, as fractions in the JSON.
    ctx = json.load(open(paths["json"]))["encoder_context"]
    assert [(c["name"], c["metrics"].get("uar"), c["same_test_folds"]) for c in ctx] == [
        ("wavlm_large_emobox", 0.9258, False), ("wav2vec2_base_emobox", 0.8206, False),
        ("whisper_base_last_layer_logreg", 0.732, True),
        ("utterance_stats_classical", 0.586, True), ("utterance_stats_classical", 0.767, False)]
    # TurEV-DB's rows; another system or corpus has none; a refresh keeps them.
    turev = harness.encoder_report.context_rows("ssl_probe", "turev_db", "loso")
    assert [(c["metrics"]["uar"], c["metrics"]["uar_std"], c["same_test_folds"])
            for c in turev] == [(0.515, 0.049, True), (0.531, 0.136, True)]
    assert harness.encoder_report.context_rows("s003", "emodb", "lso") == []
    assert harness.encoder_report.context_rows("ssl_probe", "generated", None) == []
    assert harness.refresh_paper(report)["encoder_context"] == report["encoder_context"]


def test_single_split_report_shows_weights_per_seed(tmp_path, encoder_dir):
    runs = [_write_run(tmp_path / f"seed{s}", 0, s, WEIGHTS[(1, s)]) for s in (0, 1)]
    report = harness.build_report("ssl_probe", "generated", "x.py", _cfg(encoder_dir), runs,
                                  str(tmp_path / "out"), 0.0)
    lw = report["layer_weights"]
    assert "per_fold" not in lw and lw["png"] == "generated_layer_weights.png"
    assert lw["mean_over_runs"] == pytest.approx([0.3, 0.4, 0.3])
    assert lw["std_over_runs"] == pytest.approx([0.1414214, 0.1414214, 0.0], abs=1e-6)
    assert "encoder_context" not in report
    md = harness.report_markdown(report)
    assert "| Hidden state | Seed 0 | Seed 1 | Mean ± std over runs |" in md
    assert "| 1 | 0.500 | 0.300 | 0.400 ± 0.141 |" in md


def test_runs_with_different_layer_counts_are_refused(tmp_path, encoder_dir):
    weights = {**WEIGHTS, (2, 1): [0.5, 0.5]}
    with pytest.raises(RunError, match="2 layer weights, but .* has 3"):
        _fold_report(tmp_path, _cfg(encoder_dir), weights)


def test_an_unreadable_encoder_record_is_reported_not_fatal(tmp_path, encoder_dir):
    cfg = _cfg(encoder_dir)
    cfg.data.encoder = str(tmp_path / "gone")
    report, _ = _fold_report(tmp_path, cfg)
    assert "record_error" in report["encoder"]
    assert report["encoder"]["hidden_states_reported"] == 3
    md = harness.report_markdown(report)
    assert "| encoder.json | not readable when the report was written" in md
    assert "| Hidden states | 3 (0 = the input embedding" in md


def test_fine_tuned_encoder_is_named_from_the_model_section(tmp_path, encoder_dir):
    """``ssl_finetune`` holds its encoder in ``model.audio.path`` (no feature cache): the report
    names it, its hash and its use, and the context row says it was fine-tuned."""
    from mmer_jax import config as config_lib

    cfg = config_lib.load(os.path.join(REPO, "experiments", "ssl_finetune_emodb.py"),
                          [f"model.audio.path={encoder_dir}"])
    report, paths = _fold_report(tmp_path, cfg, system="ssl_finetune")
    assert report["encoder"]["fine_tuned"] and report["encoder"]["source_sha256"] == SHA
    md = open(paths["md"]).read()
    for text in ("## Encoder", f"| Source sha256 | `{SHA}`", "| Use | inside the model",
                 "| **ssl_finetune (this reproduction)** | whisper, fine-tuned end to end, all 3 "
                 "hidden states"):
        assert text in md, text
    assert "Cache store" not in md and "Encoder window" not in md


def test_runs_without_model_summary_or_encoder_add_nothing(tmp_path, encoder_dir):
    cfg = _cfg(encoder_dir)
    cfg.data.encoder = ""
    report, paths = _fold_report(tmp_path, cfg, weights={}, system="speech_recipe")
    assert not {"layer_weights", "encoder", "encoder_context"} & set(report)
    assert "layer_weights_png" not in paths
    assert not glob.glob(os.path.join(os.path.dirname(paths["json"]), "*layer_weights*"))
    md = open(paths["md"]).read()
    for title in ("## Encoder", "## Layer weights", "## Other encoders"):
        assert title not in md


def test_committed_reports_regenerate_unchanged():
    """Every committed per-system report (none has layer weights or an encoder) re-renders
    byte for byte, and a paper refresh adds no key to it."""
    checked = 0
    for path in sorted(glob.glob(os.path.join(REPO, "reproductions", "*", "*.json"))):
        rep = json.load(open(path))
        if "ours" not in rep:  # ablation tables, S004's hybrid report
            continue
        assert harness.report_markdown(rep) == open(path[:-len(".json")] + ".md").read(), path
        assert set(harness.refresh_paper(rep, os.path.join(REPO, "reproductions"))) == set(rep)
        checked += 1
    assert checked >= 20
