"""S004's hybrid through the common commands: ``mmer reproduce s004_hybrid`` trains a seed with the
trainer its registry entry names (on two tiny finished encoder runs in the same workdir) and
writes the hybrid's own report; ``mmer eval``, ``mmer predict`` and ``mmer serve``'s app open the
evaluator and predictor that entry names, and the served row's numbers agree everywhere."""

import json
import os

import numpy as np
import pytest

from mmer_jax import config as config_lib
from mmer_jax.errors import UsageError
from mmer_jax.train.run import run

TINY = {"data.config": "tiny", "data.read_threads": 0, "train.epochs": 1,
        "train.batch_size": 16, "train.progress": False}
ENCODERS = {
    "s004_speech": {"model.audio.hidden": 8, "model.audio.filters": 4},
    "s004_face": {"model.face.width": 0.0625, "model.face.blocks": "[0,0,1]",
                  "model.face.fc_dim": 16, "model.face.final_conv": 32,
                  "data.augment": "[]"},
}
# The hybrid, shrunk: one C and gamma, 2-epoch LSTMs of 8 units.
HYBRID = {"model.c_grid": "[1.0]", "model.gamma_scales": "[1.0]",
          "model.context_lstm.hidden": 8, "model.context_lstm.epochs": 2,
          "model.context_lstm.batch_size": 64}


def _items(d: dict, data_dir: str) -> list[str]:
    return [f"{k}={v}" for k, v in {**TINY, "data.data_dir": data_dir, **d}.items()]


@pytest.fixture(scope="module")
def reproduced(tiny_generated, tmp_path_factory):
    """``<root>/s004_{speech,face}/generated/seed0`` trained, then ``mmer reproduce
    s004_hybrid --corpus generated --seeds 1 --workdir <root>``."""
    from mmer_jax.cli import main

    root = tmp_path_factory.mktemp("reproduce")
    for system, items in ENCODERS.items():
        cfg = config_lib.load(f"experiments/{system}_generated.py", _items(items, tiny_generated))
        run(cfg, str(root / system / "generated" / "seed0"))
    out = root / "reports"
    argv = ["reproduce", "s004_hybrid", "--corpus", "generated", "--seeds", "1",
            "--workdir", str(root), "--out", str(out)]
    argv += [f"--config.{x}" for x in _items(HYBRID, tiny_generated)]
    assert main(argv) == 0
    return root


@pytest.mark.slow  # trains two encoders, then the hybrid (minutes on a CPU)
def test_reproduce_trains_a_seed_and_writes_the_hybrids_own_report(reproduced):
    seed0 = reproduced / "s004_hybrid" / "generated" / "seed0"
    res = json.load(open(seed0 / "results.json"))
    assert res["system"] == "s004_hybrid" and res["best_epoch"] is None
    assert res["protocol"]["selection"].startswith("choquet row, chi-square 0.5, no context")
    rows = json.load(open(seed0 / "variants" / "fused" / "hybrid.json"))
    # The served row is the report's Choquet row with chi-square, context none.
    choquet = rows["fused"]["none"]["on"]["choquet"]["test"]
    assert res["test"]["accuracy"] == pytest.approx(choquet["accuracy"], abs=1e-12)
    assert res["test"]["weighted_f1"] == pytest.approx(choquet["weighted_f1"], abs=1e-12)
    assert set(rows["fused"]) == {"none", "within+across"}
    assert "across" in rows["fused"]["within+across"]["on"]
    rep = json.load(open(reproduced / "reports" / "s004_hybrid" / "generated.json"))
    assert rep["runner"] == "mmer reproduce s004_hybrid" and rep["seeds"] == [0]
    assert rep["config"] == "experiments/s004_hybrid_generated.py"
    assert rep["per_seed"][0]["fused"] == rows["fused"]
    assert [r["workdir"] for r in rep["provenance"]["runs"]] == [str(seed0)]
    assert rep["provenance"]["config_path"] == "experiments/s004_hybrid_generated.py"
    md = open(reproduced / "reports" / "s004_hybrid" / "generated.md").read()
    assert md.startswith("# s004_hybrid on generated") and "## Table 2" in md
    assert "## Provenance" in md


@pytest.mark.slow
def test_eval_predict_and_serve_answer_with_the_served_row(reproduced, tmp_path, capsys):
    from starlette.testclient import TestClient

    from mmer_jax.cli import main
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.data.sources import iterate
    from mmer_jax.fitted.s004_hybrid.predictor import S004HybridPredictor
    from mmer_jax.serve.app import create_app
    from mmer_jax.serve.prediction import open_predictor
    from mmer_jax.serve.predictor import Predictor
    from mmer_jax.train.evaluate import evaluate_run, load_run_config
    from tests.serve.media import write_avi

    seed0 = str(reproduced / "s004_hybrid" / "generated" / "seed0")
    res = json.load(open(os.path.join(seed0, "results.json")))
    ev = evaluate_run(seed0, "test")  # `mmer eval`: the saved row on the exported features
    assert ev["fused"]["test"]["accuracy"] == pytest.approx(res["test"]["accuracy"], abs=1e-12)

    predictor = open_predictor(seed0)
    assert isinstance(predictor, S004HybridPredictor)
    pipe = make_pipeline(load_run_config(seed0).data, ["audio", "frames"], seed=0,
                         workdir=str(tmp_path / "pipe"))
    records = list(iterate(pipe.sources["test"]))
    probs = predictor.predict_records(records)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    acc = float((probs.argmax(1) == [int(r["label"]) for r in records]).mean())
    assert acc == pytest.approx(res["test"]["accuracy"], abs=1e-9)  # as the run scored it

    clip = write_avi(str(tmp_path / "clip.avi"), np.asarray(records[0]["frames"]),
                     np.asarray(records[0]["audio"]))
    assert main(["predict", "--workdir", seed0, clip, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["results"][0]
    assert out["label"] in predictor.classes
    with TestClient(create_app(predictor)) as client:
        assert client.get("/model").json()["row"] == "choquet"
        with open(clip, "rb") as f:
            got = client.post("/predict", files={"file": ("clip.avi", f, "video/x-msvideo")})
        assert got.status_code == 200 and got.json()["label"] == out["label"]
    with pytest.raises(UsageError, match="s004_hybrid run"):  # no JAX network to export
        Predictor(seed0)


def test_missing_encoder_runs_are_named_and_nothing_is_left(tiny_generated, tmp_path):
    cfg = config_lib.load("experiments/s004_hybrid_generated.py",
                          _items(HYBRID, tiny_generated))
    workdir = tmp_path / "s004_hybrid" / "generated" / "seed0"
    with pytest.raises(UsageError, match="no finished encoder run") as exc:
        run(cfg, str(workdir))
    for system in ("s004_speech", "s004_face"):
        assert str(tmp_path / system / "generated" / "seed0") in str(exc.value)
    assert not (workdir / "config.json").exists() and not (workdir / "features").exists()


def test_meld_uses_the_generated_model_section_on_its_own_corpus():
    gen = config_lib.load("experiments/s004_hybrid_generated.py")
    meld = config_lib.load("experiments/s004_hybrid_meld.py")
    g, m = gen.model.to_dict(), meld.model.to_dict()
    assert g.pop("modalities") == ["audio", "frames"] and m.pop("modalities") == ["audio", "face"]
    assert g == m and meld.data.corpus == "meld" and gen.data.corpus == "generated_emotion"


def test_a_k_fold_report_is_refused_before_anything_trains(tiny_generated, tmp_path):
    from mmer_jax.reproduce.harness import reproduce

    with pytest.raises(UsageError, match="--folds: s004_hybrid writes a report of its own"):
        reproduce("s004_hybrid", "generated", seeds=1, workdir=str(tmp_path), folds="all",
                  overrides=_items({}, tiny_generated))
    assert not (tmp_path / "s004_hybrid").exists()
