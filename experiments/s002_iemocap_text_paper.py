"""S002 (Gao & Guo) as the paper describes its text path, on the IEMOCAP transcripts (6 classes).

    mmer train --config experiments/s002_iemocap_text_paper.py --workdir runs/s002_paper
    mmer reproduce s002 --corpus iemocap_text_paper --seeds 3

Same protocol as ``s002_iemocap_text.py`` (COSMIC lists: 108/12 train/validation dialogues of
sessions 1-4, 31 test dialogues of session 5; epoch selected on validation weighted F1, test
scored once). The model and recipe follow the paper, with PyTorch's defaults where the paper
(written in PyTorch) names none:

- words -> 300-d embedding, initialised N(0, 1) (PyTorch's ``nn.Embedding``; Flax's default,
  std 1/sqrt(300), is ~17x smaller) -> dropout -> a 2-layer BiLSTM (128 per direction, PyTorch's
  LSTM initialisation) -> max over the real words only;
- dropout -> a 2-layer dialogue BiLSTM (128 per direction) over the utterances ->
  ``LayerNorm(F + dropout(MHA_4(F)))`` with padded utterances masked as keys -> dropout -> one
  linear layer per utterance;
- Adam, lr 3e-4, weight decay 5e-5 as an L2 term added to the gradient (PyTorch's
  ``Adam(weight_decay=)``, not decoupled), constant learning rate, no clipping, batch 8
  dialogues, 60 epochs; the loss is the mean cross-entropy over real utterances.

What differs from ``s002_iemocap_text.py`` (the from-scratch recipe this project used before):
that one encodes words with a text-CNN plus a bag of word and hashed-bigram embeddings (N(0, 0.3)),
uses a 1-layer context LSTM with Flax's initialisation, a hidden layer in the classifier, dropout
twice around the attention, an auxiliary utterance loss, batch 16, lr 2e-3 with warmup, cosine
decay and clipping.

Deviation: the paper feeds pretrained 300-d word vectors; here the embeddings are trained from
scratch (no download), over a vocabulary from the training split only.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.iemocap_text_dialogues(base_config("s002"))
    m = cfg.model
    m.dropout = 0.3
    m.text.kind = "bilstm"
    m.text.dropout = 0.3
    m.text.init_scheme = "pytorch"
    m.context_layers = 2
    m.init_scheme = "pytorch"
    m.attention_dropout = 0.0
    m.head_hidden = 0
    t = cfg.train
    t.epochs = 60
    t.batch_size = 8  # dialogues
    t.lr = 3e-4
    t.optimizer = "adam"
    t.weight_decay = 5e-5
    t.schedule = "constant"
    t.grad_clip = 0.0
    t.log_every = 7
    return cfg
