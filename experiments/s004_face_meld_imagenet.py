"""S004's face branch on MELD started from ImageNet: timm's Inception-ResNet-v2 (the TF-slim
ImageNet weights) on every face crop resized to 299 x 299, its last 1536-channel map averaged,
then over the clip's valid crops (the paper's average-pool tap), dropout, a dense softmax output
layer (issue 29 part 5).

    # once, with timm installed anywhere (the weights are not fetched here):
    python -c "import timm, torch; torch.save(timm.create_model('inception_resnet_v2',
        pretrained=True).state_dict(), 'irv2.pth')"
    mmer encoders import --format timm --arch inception_resnet_v2 irv2.pth
    MMER_MELD=/path/to/MELD.Raw mmer train --config experiments/s004_face_meld_imagenet.py \\
        --workdir runs/s004_face_meld_imagenet
    # another import directory: --config.model.face_import.path=DIR (or MMER_ENCODER=DIR)

Fine-tuned end to end with the stem frozen and layer-wise decay 0.8 over the network's three
block groups; meant for an accelerator (55 M parameters at 299 x 299). No ImageNet weights can
be had here: the ``imported`` face path is tested with a random-initialised ResNet-18 import on
the generated corpus (``tests/models/test_seed_imports.py``; the Inception-ResNet-v2 import
itself is checked against timm in ``tests/pretrained/test_vision_parity.py``); no run of this
config is held here.
"""

import ml_collections

from experiments import encoders
from experiments.s004_face_meld import get_config as s004_face_meld


def get_config() -> ml_collections.ConfigDict:
    cfg = s004_face_meld()
    cfg.model.face_encoder = "imported"
    cfg.model.face_import.path = encoders.imported("inception_resnet_v2-timm")
    cfg.model.face_import.image_size = 299
    cfg.model.dropout = 0.2
    cfg.train.layer_lr_decay = 0.8
    cfg.train.freeze_stem = True
    cfg.train.lr = 1e-4
    return cfg
