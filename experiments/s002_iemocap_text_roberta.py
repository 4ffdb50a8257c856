"""S002 on the IEMOCAP transcripts with the paper's pretrained part (its Section 3.4): each
utterance through RoBERTa (a Hugging Face ``roberta-base`` directory imported with ``mmer
encoders import``), its last hidden state averaged over the utterance's tokens and projected to
300-d, then the dialogue Bi-LSTM, the attention-residual fusion and the classifier as in
``s002_iemocap_text.py`` (issue 29 part 5).

    # once, from a roberta-base directory as Hugging Face distributes it (model.safetensors,
    # config.json, tokenizer.json; not fetched here):
    mmer encoders import --format hf /path/to/roberta-base
    mmer train --config experiments/s002_iemocap_text_roberta.py \\
        --workdir runs/s002_iemocap_text_roberta
    # another import directory: --config.model.text_import.path=DIR --config.data.tokenizer=DIR

The text is tokenized by RoBERTa's own byte-level BPE (``data.tokenizer`` = the import, whose
``tokenizer.json`` the import carries; up to 64 ids per utterance with <s> and </s>), not the word
vocabulary. One peak learning rate, 5e-5 (lowered from the recipe's 2e-3 for the pretrained
stack), for the layers above RoBERTa; RoBERTa's layer k of 12 at 5e-5 x 0.85^(12 - k)
(``train.layer_lr_decay``, the embeddings at k = 0); otherwise ``dialogue_text_recipe``'s
schedule and batch. Meant for an accelerator (125 M parameters run on every utterance slot of a
16-dialogue batch). No RoBERTa weights can be had here:
the model and the tokenizer path are tested with a random 2-layer RoBERTa and its trained BPE
tokenizer (``tests/models/test_seed_imports.py``); no run of this config is held here.
"""

import ml_collections

from experiments import corpora, encoders, recipes
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = recipes.dialogue_text_recipe(corpora.iemocap_text_dialogues(base_config("s002")))
    roberta = encoders.imported("roberta-base")
    cfg.model.text_encoder = "imported"
    cfg.model.text_import.path = roberta
    cfg.model.text_import.states = "-1"
    cfg.model.text_import.pooling = "mean"
    cfg.model.text_dim = 300  # the paper's 300-d vectors
    cfg.data.tokenizer = roberta
    cfg.data.max_tokens = 64
    cfg.data.token_bucket = 16
    cfg.data.pack_utterances = 0  # every utterance slot runs through RoBERTa; packing: set 8
    cfg.train.lr = 5e-5
    cfg.train.layer_lr_decay = 0.85
    cfg.train.freeze_stem = False  # no stem in a text encoder; the embeddings train too
    return cfg
