"""The seed systems' face branches from ImageNet-shaped imports (issue 29 part 5), on a
random-initialised torchvision ResNet-18 (no ImageNet weights can be had here) and the tiny
generated corpus: S001's video branch (``imported_lstm``: the ResNet per frame, the LSTM over
frames) and S004's face branch (``imported``: the network per crop, averaged). Each: the step-0
parameters and BatchNorm statistics hold the import, one step runs and moves the trained parts;
S001's stem stays frozen (``train.freeze_stem``) while its top stage moves."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mmer_jax.weights import store
from tests.pretrained import tiny_imports

from .test_seed_imports import _check, _equal, _find, _trainer


@pytest.mark.slow  # 25 s; imported branches in seeds stay fast through the RoBERTa test
def test_s001_and_s004_face_branches_from_an_imported_resnet(tiny_generated, tmp_path):
    pytest.importorskip("torchvision", reason="the random ResNet-18 is written by torchvision")
    resnet = tiny_imports.resnet18(tmp_path / "imp")
    trainer, _ = _trainer(tmp_path / "s001", "experiments/s001_generated.py", "video",
                          ["frames"], **{"data.data_dir": tiny_generated,
                                         "model.video_encoder": "imported_lstm",
                                         "model.video_import.path": resnet,
                                         "data.max_frames": 4})
    before, after, state = _check(trainer, resnet, ("params", "batch_stats"))
    conv = _find(after)["layer4_1"]["conv2"]["kernel"]  # fine-tuned: the top stage moved ...
    assert float(np.abs(conv - _find(before)["layer4_1"]["conv2"]["kernel"]).max()) > 0
    _equal(_find(after)["conv1"], _find(before)["conv1"])  # ... the stem did not
    stats = jax.device_get(_find(state.batch_stats))["bn1"]["mean"]
    assert float(np.abs(stats - store.load(resnet).variables["batch_stats"]["bn1"]["mean"]
                        ).max()) > 0  # BatchNorm statistics updated in training

    trainer, _ = _trainer(tmp_path / "s004", "experiments/s004_face_generated.py", "video",
                          ["frames"], **{"data.data_dir": tiny_generated,
                                         "model.face_encoder": "imported",
                                         "model.face_import.path": resnet,
                                         "model.face_import.image_size": 32,
                                         "data.max_frames": 4})
    _check(trainer, resnet, ("params", "batch_stats"))
