"""``ssl_finetune`` end to end on the CPU at a tiny setting (a random 2-layer Whisper, the tiny
generated corpus, 1-2 epochs): ``mmer train``'s code path on the 4 forced CPU devices (data
parallel), then bfloat16 compute with FSDP and micro-batches. The real run is a GPU's (see
``experiments/ssl_finetune_emodb.py``)."""

from __future__ import annotations

import json
import math
import os

import pytest

from mmer_jax import config as config_lib
from mmer_jax.errors import UsageError
from mmer_jax.train.run import check_workdir, run
from tests.pretrained import tiny_imports

CONFIG = "experiments/ssl_finetune_generated.py"


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return tiny_imports.whisper(tmp_path_factory.mktemp("imp"))


def _cfg(data_dir, encoder, **extra):
    items = {"data.config": "tiny", "data.data_dir": data_dir, "data.read_threads": 0,
             "model.audio.path": encoder, "train.epochs": 2, "train.batch_size": 16,
             "train.progress": False, "train.lr": 1e-3, "train.warmup_steps": 2, **extra}
    return config_lib.load(CONFIG, [f"{k}={v}" for k, v in items.items()])


def test_data_parallel_run(tiny_generated, whisper_dir, tmp_path):
    res = run(_cfg(tiny_generated, whisper_dir), str(tmp_path))
    assert res["system"] == "ssl_finetune" and res["environment"]["device_count"] == 4
    weights = res["model_summary"]["layer_weights"]
    assert len(weights) == 3 and abs(sum(weights) - 1) < 1e-5
    assert 0 <= res["test"]["uar"] <= 1 and res["best_epoch"] in (1, 2)
    stored = json.load(open(os.path.join(tmp_path, "config.json")))
    assert json.loads(stored["model"]["audio"]["record"])["architecture"] == "whisper"
    losses = [json.loads(line)["loss"] for line in open(os.path.join(tmp_path, "metrics.jsonl"))
              if '"train"' in line]
    assert losses and all(math.isfinite(x) for x in losses)
    # The config as given again (its record not yet filled in) resumes the run: a reproduction
    # reads a finished run back; another import at the config's path is refused, naming the key.
    assert check_workdir(str(tmp_path), _cfg(tiny_generated, whisper_dir))
    other = tiny_imports.whisper(tmp_path.parent / "other", seed=1)
    with pytest.raises(UsageError, match="model.audio"):
        check_workdir(str(tmp_path), _cfg(tiny_generated, other))


@pytest.mark.slow  # 13 s; the data-parallel run stays fast
def test_bfloat16_fsdp_micro_batches(tiny_generated, whisper_dir, tmp_path):
    cfg = _cfg(tiny_generated, whisper_dir, **{
        "train.epochs": 1, "train.dtype": "bfloat16", "model.audio.dtype": "bfloat16",
        "train.fsdp": 2, "train.fsdp_min_size": 256, "train.grad_accum_steps": 2,
        "model.audio.remat": True})
    res = run(cfg, str(tmp_path))
    assert math.isfinite(res["validation"]["loss"]) and res["best_epoch"] == 1
