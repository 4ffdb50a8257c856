"""results.json's protocol block is derived from what the run read, never a stale declaration."""

from types import SimpleNamespace

from mmer_jax.config import base_config
from mmer_jax.train.run import protocol


def _pipeline(speakers, fold=None):
    return SimpleNamespace(
        class_names=["a", "b"],
        split_speakers=speakers,
        split_description="emodb/lso_fold3: speakers 2/1/1 (train 03 08; validation 13; test 11)",
        fold=fold,
        num_examples=lambda split: {"train": 10, "validation": 4, "test": 4}[split],
    )


def test_split_text_and_independence_come_from_the_speakers_read():
    cfg = base_config("quickstart")
    cfg.protocol.split = "EmoDB speakers 6/2/2 (train 03 08 09 10 11 14; val 12 13; test 15 16)"
    p = protocol(cfg, _pipeline({"train": ["03", "08"], "validation": ["13"], "test": ["11"]}),
                 "best validation weighted_f1 @ epoch 2")
    assert p["split"].startswith("emodb/lso_fold3: speakers 2/1/1")
    assert p["speaker_independent"] is True
    shared = {"train": ["03", "11"], "validation": ["13"], "test": ["11"]}
    assert protocol(cfg, _pipeline(shared), "x")["speaker_independent"] is False


def test_fold_view_names_the_fold_and_a_declaration_is_used_only_when_nothing_is_measured():
    cfg = base_config("quickstart")
    view = {"protocol": "lso", "fold": 3, "num_folds": 5, "speaker_independent": True}
    p = protocol(cfg, _pipeline(None, view), "x")
    assert p["fold"] == "lso 3/5" and p["split"].startswith("emodb/lso_fold3")
    cfg.protocol.split = "IEMOCAP session 5 test"
    cfg.protocol.measure_speakers = False
    assert protocol(cfg, _pipeline(None), "x")["split"] == "IEMOCAP session 5 test"
