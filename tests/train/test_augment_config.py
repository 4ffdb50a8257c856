"""``data.augment`` / ``data.offline_augment`` reach the training batches, never eval ones, and
``variant_overrides`` changes one variant's config only."""

import os

import numpy as np
import pytest

from mmer_jax.data.pipeline import Pipeline
from mmer_jax.errors import UsageError
from mmer_jax.train import run as run_lib

from .helpers import tiny_config


def test_offline_copies_grow_train_only_and_online_crop_runs(tiny_generated, tmp_path):
    pytest.importorskip("librosa")
    cfg = tiny_config(tiny_generated)
    plain = Pipeline(cfg.data, ["audio", "frames"], cfg.seed)
    cfg.data.offline_augment = [{"name": "pitch_shift", "n_steps": 2}]
    cfg.data.augment = [{"name": "random_crop_images", "padding": 2}]
    aug = Pipeline(cfg.data, ["audio", "frames"], cfg.seed, workdir=str(tmp_path))
    n = plain.num_examples("train")
    assert aug.num_examples("train") == 2 * n
    for split in ("validation", "test"):
        assert aug.num_examples(split) == plain.num_examples(split)
    # Cached beside the prepared dataset, so other runs and seeds reuse the copies.
    cached = os.path.join(str(aug.builder.data_dir), "augmented_train", "pitch_shift_n_steps_2.npz")
    assert os.path.exists(cached)

    # Eval batches are bit-identical to the unaugmented pipeline's; training frames are not.
    ev_plain = next(iter(plain.batches("validation", 8)))
    ev_aug = next(iter(aug.batches("validation", 8)))
    for k in ev_plain:
        np.testing.assert_array_equal(ev_plain[k], ev_aug[k])
    tr_plain = next(iter(plain.batches("train", 8, train=True)))
    tr_aug = next(iter(aug.batches("train", 8, train=True)))
    assert tr_aug["frames_u8"].shape[1:] == tr_plain["frames_u8"].shape[1:]
    assert sum(len(b["label"]) for b in aug.batches("train", 8, train=True)) == (2 * n // 8) * 8


def test_unknown_online_op_is_a_usage_error(tiny_generated):
    cfg = tiny_config(tiny_generated)
    cfg.data.augment = [{"name": "random_crop_imagez"}]
    with pytest.raises(UsageError, match="data.augment.*random_crop_imagez"):
        Pipeline(cfg.data, ["frames"], cfg.seed)


def test_variant_overrides_touch_one_variant(tiny_generated):
    cfg = tiny_config(tiny_generated)
    cfg.variant_overrides = {"fused": {"model": {"dropout": 0.5}}}
    assert run_lib.config_for_variant(cfg, "fused").model.dropout == 0.5
    assert run_lib.config_for_variant(cfg, "audio").model.dropout == cfg.model.dropout
    assert cfg.model.dropout != 0.5  # the shared config is not modified
    cfg.variant_overrides = {"fused": {"model": {"dropuot": 0.5}}}
    with pytest.raises(UsageError, match="variant_overrides.fused.model.dropuot"):
        run_lib.config_for_variant(cfg, "fused")


def test_override_for_a_missing_variant_is_refused(tiny_generated, tmp_path):
    cfg = tiny_config(tiny_generated)
    cfg.variant_overrides = {"fusde": {"model": {"dropout": 0.5}}}
    with pytest.raises(UsageError, match="variant_overrides.fusde.*no such variant"):
        run_lib.run(cfg, str(tmp_path))
