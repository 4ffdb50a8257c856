"""S002 (Gao & Guo): Bi-LSTM dialogue context + multi-head attention + residual LayerNorm, on the
IEMOCAP transcripts (6 classes), text modality only.

    mmer data build iemocap --config text --manual_dir ../shared/data/iemocap_text
    mmer train --config experiments/s002_iemocap_text.py --workdir runs/s002_iemocap_text
    mmer reproduce s002 --corpus iemocap_text --seeds 3

Protocol: conv-emotion/COSMIC ``iemocap.pkl`` dialogue lists, 108 train / 12 validation dialogues
(sessions 1-4) and 31 test dialogues (session 5, speakers unseen in training); 5,163 / 647 / 1,623
utterances. The epoch is selected on validation weighted F1 only; the test split is scored once.
(The paper's 5,320 / 490 train/validation utterances are a different carve of sessions 1-4 that it
does not list; its test set, session 5 with 1,623 utterances, is the same.)

Training follows the paper: Adam, lr 3e-4, weight decay 5e-5 (an L2 term, PyTorch-style), batch
32, 60 epochs. The batch is read as 32 *dialogues*, the unit of the conv-emotion loaders that
dialogue models like S002 build on (a batch of 32 utterances cannot hold the dialogue context the
model attends over). With 108 training dialogues that is 4 steps per epoch (3 full batches and one
of 12; no dialogue is dropped), 240 steps in all. The loss is the mean cross-entropy over the real
utterances of the batch (padding has weight 0), as conv-emotion's masked NLL loss.

Deviations: the paper feeds 300-d pretrained word vectors; here 300-d embeddings are trained from
scratch (no download), over a vocabulary from the training split only. Layer sizes the paper omits
are the model's defaults (see mmer_jax/models/systems/s002.py).
"""

from __future__ import annotations

import os
import pathlib

import ml_collections

from experiments.common import base_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def iemocap_text_dir() -> str:
    """The folder holding ``iemocap.pkl``: ``../shared/data/iemocap_text`` beside the checkout
    (``MMER_IEMOCAP_TEXT`` overrides; ``./shared/...`` inside the checkout is tried second)."""
    env = os.environ.get("MMER_IEMOCAP_TEXT")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    candidates = [REPO.parent / "shared" / "data" / "iemocap_text",
                  REPO / "shared" / "data" / "iemocap_text"]
    for c in candidates:
        if (c / "iemocap.pkl").is_file():
            return str(c)
    return str(candidates[0])


def iemocap_text_base(system: str, model_name: str) -> ml_collections.ConfigDict:
    """The IEMOCAP-text dialogue protocol and training recipe shared by S002 and its baselines."""
    cfg = base_config()
    cfg.system = system
    cfg.variants = ml_collections.ConfigDict(dict(text=["text"]))
    cfg.primary_variant = "text"
    cfg.data.corpus = "iemocap"
    cfg.data.config = "text"
    cfg.data.manual_dir = iemocap_text_dir()
    cfg.data.unit = "dialogue"
    cfg.data.max_utterances = 112  # IEMOCAP's longest dialogue has 110 turns: no chunking
    cfg.data.utterance_bucket = 8
    cfg.data.max_tokens = 64  # 99th percentile of utterance length is 53 words
    cfg.data.token_bucket = 8
    cfg.data.drop_remainder = False
    cfg.data.read_threads = 0  # ~150 small dialogues; decoded once and cached
    cfg.model = ml_collections.ConfigDict(dict(
        name=model_name,
        modalities=["text"],
        dropout=0.5,
        embed_dim=300,
        text_widths=(3, 4, 5),
        text_filters=50,
        text_out=100,
    ))
    cfg.train.epochs = 60
    cfg.train.batch_size = 32  # dialogues
    cfg.train.lr = 3e-4
    cfg.train.optimizer = "adam"
    cfg.train.weight_decay = 5e-5
    cfg.train.schedule = "constant"
    cfg.train.grad_clip = 0.0
    cfg.train.select_metric = "weighted_f1"
    cfg.train.log_every = 4
    cfg.protocol.split = ("IEMOCAP 6-class, COSMIC dialogue lists: sessions 1-4 108/12 "
                          "train/validation dialogues, session 5 test (31 dialogues)")
    cfg.protocol.fold = ""
    cfg.protocol.speaker_independent = True  # session 5 actors never train (ids are only M/F)
    return cfg


def get_config() -> ml_collections.ConfigDict:
    cfg = iemocap_text_base("s002", "s002")
    cfg.model.context_hidden = 128
    cfg.model.num_heads = 4
    cfg.model.head_hidden = 128
    cfg.model.attention_impl = "xla"
    return cfg
