"""`mmer reproduce --folds`: every fold of a build's fold protocol × seeds from one build, with
per-fold results and mean ± std over the folds, the protocol named in the report."""

import json
import os

import pytest

from mmer_jax.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A quickstart config trimmed to one variant, in an experiments folder of its own.
CONFIG = f'''
import runpy

def get_config():
    cfg = runpy.run_path({os.path.join(REPO, "experiments", "quickstart.py")!r})["get_config"]()
    cfg.variants = {{"text": ["text"]}}
    cfg.primary_variant = "text"
    cfg.model.modalities = ["text"]
    return cfg
'''


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    """generated_emotion/tiny (4 speakers) built once, with a leave-one-speaker-out protocol
    written beside it as a builder's ``_fold_protocols`` would (``folds.json``)."""
    from data_prep import build as build_lib
    from data_prep._common.folds import speaker_protocol, write_folds

    data_dir = tmp_path_factory.mktemp("tfds")
    builder = build_lib.build("generated_emotion", "tiny", str(data_dir))
    speaker_of = {}
    for split in builder.info.splits:
        src = builder.as_data_source(split=split)
        for i in range(len(src)):
            speaker_of[src[i]["id"].decode()] = src[i]["speaker"].decode()
    write_folds(builder.data_dir, {"loso": speaker_protocol(speaker_of)})
    exp = tmp_path_factory.mktemp("experiments")
    (exp / "quickstart_tinyfolds.py").write_text(CONFIG)
    overrides = [f"data.data_dir={data_dir}", "data.config=tiny", "data.read_threads=0",
                 "data.max_tokens=8", "model.encoders.text.embed_dim=8",
                 "model.encoders.text.hidden=8", "model.head_hidden=8", "train.epochs=1",
                 "train.batch_size=16", "train.progress=false"]
    return str(exp), overrides, sorted(set(speaker_of.values()))


def test_parse_folds():
    from mmer_jax.reproduce.harness import parse_folds

    assert parse_folds("all", 4, "loso") == [1, 2, 3, 4]
    assert parse_folds("3,1", 4, "loso") == [1, 3]
    with pytest.raises(UsageError, match=r"--folds '5': protocol 'loso' has folds 1..4"):
        parse_folds("5", 4, "loso")
    with pytest.raises(UsageError, match=r"expected 'all' or fold numbers"):
        parse_folds("first", 4, "loso")


def _fake_run(calls):
    """Stands in for ``mmer_jax.train.run.run``: opens the run's fold view of the one build (as a
    run does) and returns results whose accuracy encodes (fold, seed), without training."""
    import numpy as np

    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.train.run import environment, protocol

    def run(cfg, workdir, **kw):
        pipe = make_pipeline(from_section(DataConfig, cfg.data, "data"), ["text"], cfg.seed)
        calls.append((cfg.data.fold, cfg.seed, pipe.builder.data_dir))
        acc = 0.1 * cfg.data.fold + 0.01 * cfg.seed
        n = len(pipe.class_names)
        m = {"accuracy": acc, "weighted_f1": acc, "macro_f1": acc, "uar": acc,
             "per_class": {c: {"recall": acc, "f1": acc, "precision": acc}
                           for c in pipe.class_names},
             "confusion": np.eye(n, dtype=int).tolist()}
        res = {"system": cfg.system, "corpus": cfg.data.corpus, "variant": "text",
               "modalities": ["text"], "protocol": protocol(cfg, pipe, "best @ epoch 1"),
               "test": m, "validation": m, "environment": environment(),
               "timing": {"wall_s": 1.0, "train_examples_per_s": 10.0, "train_wall_s": 1.0},
               "num_params": 1, "best_epoch": 1}
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(res, f)
        return res

    return run


def test_all_folds_from_one_build_with_per_fold_and_mean_std(folded, tmp_path, monkeypatch):
    from mmer_jax.reproduce import model_profile
    from mmer_jax.reproduce.harness import reproduce
    from mmer_jax.train import run as run_lib

    calls = []
    monkeypatch.setattr(run_lib, "run", _fake_run(calls))
    monkeypatch.setattr(model_profile, "profile_config", lambda cfg: None)
    exp, overrides, speakers = folded
    work, out = str(tmp_path / "runs"), str(tmp_path / "reports")
    kw = dict(corpus="tinyfolds", seeds=2, workdir=work, out_dir=out, overrides=overrides,
              experiments_dir=exp, folds="all")
    paths = reproduce("quickstart", **kw)["tinyfolds"]
    # Every fold x seed, each a view of the one build.
    assert [(k, s) for k, s, _ in calls] == [(k, s) for k in (1, 2, 3, 4) for s in (0, 1)]
    assert len({d for _, _, d in calls}) == 1
    assert paths["json"] == os.path.join(out, "quickstart", "tinyfolds_loso_folds.json")
    rep = json.load(open(paths["json"]))
    f = rep["folds"]
    assert f["protocol"] == "loso" and f["num_folds"] == 4 and f["folds"] == [1, 2, 3, 4]
    assert f["seeds"] == 2 and f["speaker_independent"] is True
    assert rep["protocol"]["fold"] == "loso: folds 1, 2, 3, 4 of 4"
    assert rep["protocol"]["fold_protocol"] == "loso"
    assert rep["protocol"]["split"] == f["description"]
    # Leave-one-speaker-out: every speaker is tested exactly once.
    assert sorted(s for pf in f["per_fold"] for s in pf["speakers"]["test"]) == speakers
    for pf in f["per_fold"]:
        k = pf["fold"]
        assert pf["test"]["accuracy"]["values"] == pytest.approx([0.1 * k, 0.1 * k + 0.01])
        assert pf["workdirs"] == [os.path.join(work, "quickstart", "tinyfolds", f"loso_fold{k}",
                                               f"seed{s}") for s in (0, 1)]
        assert pf["split"].endswith(f"test {pf['speakers']['test'][0]})")
    over = f["test_over_folds"]["accuracy"]
    assert over["values"] == pytest.approx([0.105, 0.205, 0.305, 0.405])
    assert over["mean"] == pytest.approx(0.255) and over["n"] == 4
    assert over["std"] == pytest.approx(0.1290994, abs=1e-6)  # ddof 1 over the fold means
    assert [(r["fold"], r["seed"]) for r in rep["runs"]] == [(k, s) for k in (1, 2, 3, 4)
                                                             for s in (0, 1)]
    md = open(paths["md"]).read()
    for text in ("'loso' folds", "## Folds (test, %; protocol `loso`)",
                 "| **mean ± std over 4 folds** |  |  | 25.5 ± 12.9 |",
                 "| 1 | spk00 | 32 | 10.5 ± 0.7 |", "| 4 | spk03 | 16 | 40.5 ± 0.7 |",
                 "Fold / seed",
                 "| Folds | loso: folds 1, 2, 3, 4 of 4 |", "2 per fold (8 runs)"):
        assert text in md, text
    # Resumable: a second call reads every finished run back instead of running it.
    calls.clear()
    again = reproduce("quickstart", **kw)["tinyfolds"]
    assert calls == []
    assert json.load(open(again["json"]))["folds"]["test_over_folds"] == f["test_over_folds"]
    # A subset has its own report; a fold the protocol lacks or a fixed data.fold is refused.
    sub = reproduce("quickstart", **{**kw, "folds": "3,1"})["tinyfolds"]
    assert sub["json"].endswith("tinyfolds_loso_folds1_3.json") and calls == []
    assert json.load(open(sub["json"]))["folds"]["test_over_folds"]["accuracy"]["values"] == \
        pytest.approx([0.105, 0.305])
    with pytest.raises(UsageError, match="has folds 1..4"):
        reproduce("quickstart", **{**kw, "folds": "7"})
    with pytest.raises(UsageError, match="drop data.fold=2"):
        reproduce("quickstart", **{**kw, "overrides": overrides + ["data.fold=2"]})
    with pytest.raises(UsageError, match="has no fold protocol 'lso'; it has loso"):
        reproduce("quickstart", **{**kw, "overrides": overrides + ["data.fold_protocol=lso"]})


def test_cli_folds_refuses_a_build_without_folds(tmp_path, capsys):
    from mmer_jax import cli

    rc = cli.main(["reproduce", "s003", "--corpus", "generated", "--folds", "all",
                   "--workdir", str(tmp_path / "w"), f"--config.data.data_dir={tmp_path}/d",
                   "--config.data.config=tiny"])
    assert rc == 2
    assert "defines no fold protocol (no folds.json)" in capsys.readouterr().err


@pytest.mark.slow
def test_all_folds_really_trained(folded, tmp_path, monkeypatch):
    """The same through real training (~12 s a fold here)."""
    from mmer_jax.reproduce import model_profile
    from mmer_jax.reproduce.harness import reproduce

    monkeypatch.setattr(model_profile, "profile_config", lambda cfg: None)
    exp, overrides, _ = folded
    work = str(tmp_path / "runs")
    paths = reproduce("quickstart", corpus="tinyfolds", seeds=1, workdir=work,
                      out_dir=str(tmp_path / "out"), overrides=overrides, experiments_dir=exp,
                      folds="all")["tinyfolds"]
    rep = json.load(open(paths["json"]))
    accs = []
    for k in (1, 2, 3, 4):
        res = json.load(open(os.path.join(work, "quickstart", "tinyfolds", f"loso_fold{k}",
                                          "seed0", "results.json")))
        assert res["protocol"]["fold"] == f"loso {k}/4"
        accs.append(res["test"]["accuracy"])
    assert rep["folds"]["test_over_folds"]["accuracy"]["values"] == accs


def test_a_fold_report_lists_each_fold_s_split_sizes():
    from mmer_jax.reproduce.report import render_markdown

    path = os.path.join(REPO, "reproductions", "speech_recipe", "turev_db_loso_folds.json")
    rep = json.load(open(path))
    row = [line for line in render_markdown(rep).splitlines()
           if line.startswith("| Train/validation/test |")][0]
    sizes = [f["examples"] for f in rep["folds"]["per_fold"]]
    for k, s in enumerate(sizes, 1):
        assert f"fold {k}: {s['train']}/{s['validation']}/{s['test']}" in row
    assert "—/—/—" not in row
