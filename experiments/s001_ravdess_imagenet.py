"""S001 on RAVDESS with its video branch started from ImageNet: torchvision's ResNet-34
(``IMAGENET1K_V1``) per frame, its last stage averaged, the LSTM over frames and the fusion as in
``s001_ravdess.py`` (issue 29 part 5; the paper's ResNet-34 is ImageNet-pretrained).

    # once, with torch + torchvision installed anywhere (the weights are not fetched here):
    python -c "import torch, torchvision; torch.save(torchvision.models.resnet34(
        weights='IMAGENET1K_V1').state_dict(), 'resnet34.pth')"
    mmer encoders import --format torchvision --arch resnet34 resnet34.pth
    MMER_RAVDESS=/path/with/Actor_XX mmer train --config experiments/s001_ravdess_imagenet.py \\
        --workdir runs/s001_ravdess_imagenet
    # another import directory: --config.model.video_import.path=DIR (or MMER_ENCODER=DIR)

Fine-tuned end to end: the stem frozen (``train.freeze_stem``), ResNet stage k of 4 at
lr * 0.8^(4 - k) (``train.layer_lr_decay``), the LSTM and head at lr. No ImageNet weights can be
had here: the model is tested with a random-initialised ResNet-18 import on the generated corpus
(``tests/models/test_seed_imports.py``); no run of this config is held here.
"""

import ml_collections

from experiments import encoders
from experiments.s001_ravdess import get_config as s001_ravdess


def get_config() -> ml_collections.ConfigDict:
    cfg = s001_ravdess()
    cfg.model.video_encoder = "imported_lstm"
    cfg.model.video_import.path = encoders.imported("resnet34-torchvision")
    cfg.model.video_import.states = "-1"  # layer4, 512 channels
    cfg.train.layer_lr_decay = 0.8
    cfg.train.freeze_stem = True
    cfg.train.lr = 3e-4
    return cfg
