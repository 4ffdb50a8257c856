"""Feature export for S004's classical half (mmer_jax.train.export_features): a tiny finished run's
best checkpoint -> per-split .npz (no pickle) whose rows match the stored order and a direct
model.apply on the same batch."""

import json
import os

import numpy as np
import pytest

from mmer_jax import config as config_lib
from mmer_jax.errors import UsageError
from mmer_jax.train import export_features as ef
from mmer_jax.train.run import run


@pytest.fixture(scope="module")
def tiny_run(tiny_generated, tmp_path_factory):
    """S004's speech system, shrunk, trained 1 epoch on the tiny corpus (it returns
    ``aux["feat_audio"]``)."""
    items = {"data.config": "tiny", "data.data_dir": tiny_generated, "data.read_threads": 0,
             "train.epochs": 1, "train.batch_size": 16, "train.progress": False,
             "model.audio.hidden": 8, "model.audio.filters": 4}
    cfg = config_lib.load("experiments/s004_speech_generated.py",
                          [f"{k}={v}" for k, v in items.items()])
    workdir = str(tmp_path_factory.mktemp("run"))
    run(cfg, workdir)
    return workdir


def test_export_round_trips_and_matches_a_direct_apply(tiny_run, tmp_path):
    out = str(tmp_path / "feats")
    manifest = ef.export_features(tiny_run, ["feat_audio"], out, splits=("train", "test"),
                                  progress=False)
    on_disk = json.load(open(os.path.join(out, ef.MANIFEST)))
    assert on_disk == manifest
    assert manifest["variant"] == "audio" and manifest["groups"] == "id (no groups)"

    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.train import sharding as sh
    from mmer_jax.train.evaluate import load_run_config
    from mmer_jax.train.loop import VariantTrainer
    from mmer_jax.train.run import config_for_variant
    from mmer_jax.train.state import eval_params

    cfg = load_run_config(tiny_run)
    pipeline = make_pipeline(from_section(DataConfig, cfg.data, "data"), ["audio"], cfg.seed,
                             tiny_run)
    for split in ("train", "test"):
        z = ef.load_split(out, split)  # allow_pickle=False: a pickled array would raise here
        n = pipeline.num_examples(split)
        assert manifest["examples"][split] == n
        assert z["feat_audio"].shape == (n, manifest["keys"]["feat_audio"])
        assert z["feat_audio"].dtype == np.float32 and np.isfinite(z["feat_audio"]).all()
        source = pipeline.sources[split]
        ids = [ef.record_group({"id": source[i]["id"]}) for i in range(n)]
        assert list(z["id"]) == ids and list(z["group"]) == ids  # no groups: group = id
        np.testing.assert_array_equal(z["order"], np.arange(n))  # no turn: the position
        np.testing.assert_array_equal(z["label"], [int(source[i]["label"]) for i in range(n)])

    # The first test batch through model.apply directly: the exported rows, to float tolerance.
    trainer = VariantTrainer(config_for_variant(cfg, "audio"), pipeline, "audio", ["audio"],
                             tiny_run)
    best, _ = trainer.restore("best")
    host = next(iter(trainer.batches("test", train=False)))
    _, aux = trainer.model.apply({"params": eval_params(best), "batch_stats": best.batch_stats},
                                 trainer.features(sh.to_global(host, trainer.mesh)), train=False)
    trainer.ckpt.close()
    keep = np.asarray(host["weight"]) > 0
    direct = np.asarray(aux["feat_audio"])[keep]
    np.testing.assert_allclose(ef.load_split(out, "test")["feat_audio"][: len(direct)], direct,
                               rtol=1e-5, atol=1e-6)


def test_unknown_key_lists_the_available_ones(tiny_run, tmp_path, capsys):
    code = ef.main(["--workdir", tiny_run, "--keys", "feat_audio,tap_fc", "--out",
                    str(tmp_path), "--splits", "test"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert err == ("error: --keys tap_fc: not in this model's aux; available: feat_audio")
    assert not os.path.exists(tmp_path / "test.npz")
    with pytest.raises(UsageError, match="--splits dev: each must be one of"):
        ef.export_features(tiny_run, ["feat_audio"], str(tmp_path), splits=("dev",))


def test_records_group_by_dialogue_when_stored():
    assert ef.record_group({"id": b"u1", "dialogue_id": b"d7"}) == "d7"
    assert ef.record_group({"id": b"u1", "video_id": "v2"}) == "v2"
    assert ef.record_group({"id": b"u1"}) == "u1"
    with pytest.raises(UsageError, match="not in this model's aux"):
        ef.check_keys(["tap_x"], {"feat_audio": np.zeros((2, 3)), "logits": np.zeros((2, 4))})
    with pytest.raises(UsageError, match="not one vector per example"):
        ef.check_keys(["feat_audio"], {"feat_audio": np.zeros((2, 5, 3))})
