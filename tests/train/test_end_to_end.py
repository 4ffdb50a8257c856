"""Tiny train -> select -> test -> report, resume equivalence, and `mmer eval`."""

import json
import os

import jax
import numpy as np

from mmer_jax.train.checkpoint import Checkpoints
from mmer_jax.train.evaluate import evaluate_run
from mmer_jax.train.loop import Interrupted
from mmer_jax.train.report import read_predictions
from mmer_jax.train.run import run

from .helpers import only_variant, tiny_config

RESULT_KEYS = {
    "system",
    "corpus",
    "modalities",
    "protocol",
    "test",
    "validation",
    "environment",
    "timing",
}


def _final_params(workdir, variant):
    ckpt = Checkpoints(os.path.join(workdir, "variants", variant))
    step = ckpt.latest_step()
    state, _ = ckpt.restore("latest", None)
    ckpt.close()
    return step, state["params"]


def test_train_eval_report_and_resume(tiny_generated, tmp_path):
    cfg = only_variant(tiny_config(tiny_generated), "fused", ["audio", "frames", "text"])
    full = str(tmp_path / "full")
    results = run(cfg, full)
    assert RESULT_KEYS <= set(results)
    on_disk = json.load(open(os.path.join(full, "results.json")))
    assert on_disk["test"]["confusion"] == results["test"]["confusion"]
    assert sum(map(sum, on_disk["test"]["confusion"])) == on_disk["protocol"]["examples"]["test"]
    # Per-example outputs at the chosen checkpoint, both splits: the softmax whose argmax the
    # scores count (seed ensembles average these).
    for split in ("validation", "test"):
        saved = read_predictions(os.path.join(full, "variants", "fused"), split)
        probs = np.asarray(saved["probs"])
        assert probs.shape == (on_disk["protocol"]["examples"][split], len(saved["classes"]))
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        # the predicted class has the largest probability (up to the 6 saved decimals)
        chosen = probs[np.arange(len(probs)), saved["pred"]]
        assert np.all(chosen >= probs.max(-1) - 1e-6)
        cm = np.zeros((len(saved["classes"]),) * 2, int)
        np.add.at(cm, (saved["true"], saved["pred"]), 1)
        assert cm.tolist() == on_disk[split]["confusion"]
    assert on_disk["protocol"]["selection"].startswith("best validation weighted_f1 @ epoch")
    # The selected epoch as a number too (added beside `selection`, which stays).
    assert on_disk["protocol"]["selection"].endswith(f"@ epoch {on_disk['best_epoch']}")
    assert isinstance(on_disk["best_epoch"], int)
    assert os.path.exists(os.path.join(full, "report.md"))
    assert os.path.getsize(os.path.join(full, "confusion_test.png")) > 1000
    lines = [json.loads(x) for x in open(os.path.join(full, "metrics.jsonl"))]
    assert {ln["split"] for ln in lines} == {"train", "validation"}
    # results.json is written once: the same command on a finished run leaves it byte for byte.
    written = open(os.path.join(full, "results.json"), "rb").read()
    assert run(cfg, full) == on_disk
    assert open(os.path.join(full, "results.json"), "rb").read() == written

    # Interrupted after 3 of 8 steps, then the same command again: identical final parameters.
    part = str(tmp_path / "part")
    cfg_stop = only_variant(
        tiny_config(tiny_generated, **{"train.stop_after_steps": 3}),
        "fused",
        ["audio", "frames", "text"],
    )
    try:
        run(cfg_stop, part)
        raise AssertionError("expected the run to stop")
    except Interrupted:
        pass
    assert not os.path.exists(os.path.join(part, "results.json"))
    before = json.load(open(os.path.join(part, "wall_time.json")))["wall_s"]
    assert before > 0  # the interrupted call's time is kept
    resumed = run(cfg, part)
    assert resumed["timing"]["wall_s"] > before  # the whole job's wall time, resumes included
    s_full, p_full = _final_params(full, "fused")
    s_part, p_part = _final_params(part, "fused")
    assert s_full == s_part
    for a, b in zip(jax.tree.leaves(p_full), jax.tree.leaves(p_part), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert resumed["test"]["confusion"] == results["test"]["confusion"]

    # `mmer eval` re-evaluates the best checkpoint and finds the same test numbers.
    again = evaluate_run(full, "test")
    assert again["fused"]["test"]["confusion"] == results["test"]["confusion"]
