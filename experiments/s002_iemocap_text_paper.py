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
  dialogues (the paper's 32 measured below), 60 epochs; the loss is the mean cross-entropy
  over real utterances.

What differs from ``s002_iemocap_text.py`` (the from-scratch recipe this project used before):
that one encodes words with a text-CNN plus a bag of word and hashed-bigram embeddings (N(0, 0.3)),
uses a 1-layer context LSTM with Flax's initialisation, a hidden layer in the classifier, dropout
twice around the attention, an auxiliary utterance loss, batch 16, lr 2e-3 with warmup, cosine
decay and clipping.

Finding (3 seeds, CPU, ``reproductions/s002/iemocap_text_paper.md``): test weighted F1
59.8 ± 1.6 (61.3, 58.2, 59.8; validation 52.4, 53.8, 52.7), below the paper's 61.0. Unknown
words were one cause of the gap: 18.5 % of test utterances hold a word unseen in training, and
with ``data.min_count = 1`` ``<unk>`` never occurs in training, so its embedding stays a random
N(0, 1) vector; ``min_count = 2`` (975 singletons -> ``<unk>``) trains it. Validation weighted
F1 rose 52.6 -> 53.0 (test 59.0 ± 2.0 -> 59.8 ± 1.6). Weight EMA (``train.ema_decay = 0.99``)
on top lowered validation to 51.1 (test 59.6 ± 1.8), so it is off. Three more changes, each
3 seeds, were judged on mean best validation weighted F1 against this config's 53.0 and not
kept: word dropout 0.1 (``model.text.word_dropout``, real words -> ``<unk>`` in training) 52.6
(test 59.7), cosine decay from the paper's "initial" learning rate 51.6 (test 59.4; smoother
curves, lower peaks), ``min_count = 3`` 52.4 (test 60.1). The paper's own batch size, 32
(dialogues, 4 steps an epoch), reached 52.6 (52.5, 53.7, 51.7; test 59.5 ± 1.7), so the batch
stays at 8, the size at which an independent PyTorch implementation of this path was reported
to reach 61.4. Nor does the JAX implementation hold this path back: a plain PyTorch model of
the same path (``benchmarks/torch_models.py``: nn.Embedding, nn.LSTM with packed sequences,
nn.MultiheadAttention, Adam with weight_decay), trained by a 60-line loop on the same batches of
this pipeline (seed 0, 60 epochs, CPU, before the ``min_count`` change), tracks it epoch by
epoch and reaches the same best validation weighted F1 (0.533 vs 0.531 here), yet scores 58.5 on
test where ours scored 61.3. The spread comes from the 12-dialogue validation split choosing the
epoch.

The paper's Eq. 1 also gives each speaker a context of that speaker's own turns; this config
leaves it out, and ``s002_iemocap_text_paper_speakers.py`` adds our reading of it (test
weighted F1 61.6 ± 0.9). The batch-32 run above: ``--config.train.batch_size=32``.

Deviation: the paper feeds 300-d word vectors taken from a pretrained RoBERTa (its Section 3.4);
here the embeddings are trained from scratch (no download), over a vocabulary from the training
split only.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.iemocap_text_dialogues(base_config("s002"))
    # The word BiLSTM runs on the batch's real utterances only (about half of the [B, U] slots
    # are padding), in row counts that are multiples of 64 (few shapes to compile).
    cfg.data.pack_utterances = 64
    # Training words seen once map to <unk>, so <unk> has a trained embedding: 18.5 % of test
    # utterances hold a word unseen in training, which min_count=1 sends to a never-trained row.
    cfg.data.min_count = 2
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
