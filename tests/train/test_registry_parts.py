"""The commands dispatch on a system's registry entry, never on its name: a throwaway system (a
majority-class "classifier", registered for one test only) is trained by ``run()``, evaluated by
``evaluate_run`` and opened by ``open_predictor`` through the parts its entry names, and a part
that cannot be imported is one line naming the system and the target."""

import dataclasses
import os

import numpy as np
import pytest

from mmer_jax.config import base_config
from mmer_jax.errors import UsageError
from mmer_jax.registry import SYSTEMS, System

HERE = "tests.train.test_registry_parts"


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    name: str = "toy_majority"
    modalities: tuple[str, ...] = ("text",)


def _labels(pipeline, split):
    from mmer_jax.data.sources import iterate

    return np.array([int(r["label"]) for r in iterate(pipeline.sources[split])])


class ToyTrainer:
    """Predicts the training split's most frequent class; saves it as ``majority.txt``."""

    def __init__(self, cfg, pipeline, variant, modalities, run_dir):
        self.pipeline, self.modalities = pipeline, list(modalities)
        self.dir = os.path.join(run_dir, "variants", variant)
        os.makedirs(self.dir, exist_ok=True)

    def run(self):
        from mmer_jax.train.metrics import classification_metrics

        majority = int(np.bincount(_labels(self.pipeline, "train")).argmax())
        with open(os.path.join(self.dir, "majority.txt"), "w") as f:
            f.write(str(majority))
        names = self.pipeline.class_names
        scores = {s: classification_metrics(y, np.full_like(y, majority), names)
                  for s in ("validation", "test") for y in [_labels(self.pipeline, s)]}
        return {"modalities": self.modalities, **scores, "selection": f"class {majority}",
                "best_epoch": None, "train_examples_per_s": 0.0, "train_wall_s": 0.0,
                "num_params": 1}


def toy_evaluate(workdir, split, cfg):
    with open(os.path.join(workdir, "variants", "text", "majority.txt")) as f:
        return {"text": {"epoch": None, split: {"majority": int(f.read())}}}


class ToyPredictor:
    def __init__(self, workdir, variant=None, batch_size=1):
        self.workdir, self.variant = workdir, variant or "text"


@pytest.fixture
def toy(monkeypatch):
    """Registers ``toy_majority`` for this test only."""
    entry = System("toy_majority", ToyConfig, lambda cfg, num_classes, vocab_size=0: None,
                   trainer=f"{HERE}:ToyTrainer", evaluator=f"{HERE}:toy_evaluate",
                   predictor=f"{HERE}:ToyPredictor")
    SYSTEMS.names()  # the loaders first, so the entry is not overwritten by them
    monkeypatch.setitem(SYSTEMS._entries, "toy_majority", entry)
    return entry


def _cfg(data_dir):
    cfg = base_config("toy_majority")
    cfg.variants = {"text": ["text"]}
    cfg.primary_variant = "text"
    cfg.data.corpus, cfg.data.config = "generated_emotion", "tiny"
    cfg.data.data_dir, cfg.data.read_threads = data_dir, 0
    cfg.train.progress = False
    return cfg


def test_train_eval_and_predict_use_the_parts_the_entry_names(toy, tiny_generated, tmp_path):
    from mmer_jax.serve.prediction import open_predictor
    from mmer_jax.serve.predictor import Predictor
    from mmer_jax.train.evaluate import evaluate_run
    from mmer_jax.train.run import run, trainer_class

    cfg = _cfg(tiny_generated)
    assert trainer_class(cfg).__name__ == "ToyTrainer" and not toy.gradient
    res = run(cfg, str(tmp_path))
    assert res["system"] == "toy_majority" and res["best_epoch"] is None
    majority = int(res["protocol"]["selection"].split()[-1])
    assert evaluate_run(str(tmp_path), "test") == {"text": {"epoch": None,
                                                             "test": {"majority": majority}}}
    assert type(open_predictor(str(tmp_path))).__name__ == "ToyPredictor"
    with pytest.raises(UsageError, match=f"toy_majority run.*{HERE}:ToyPredictor"):
        Predictor(str(tmp_path))


def test_a_part_that_cannot_be_imported_is_one_line_naming_it(toy, monkeypatch, tmp_path):
    from mmer_jax.train.run import trainer_class

    monkeypatch.setitem(SYSTEMS._entries, "toy_majority",
                        dataclasses.replace(toy, trainer=f"{HERE}:NoSuchTrainer"))
    with pytest.raises(UsageError, match=f"'toy_majority': its trainer '{HERE}:NoSuchTrainer' "
                                         "cannot be imported"):
        trainer_class(_cfg(str(tmp_path)))
    with pytest.raises(ValueError, match="has no reporter"):
        toy.part("reporter")
