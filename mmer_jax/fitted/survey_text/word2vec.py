"""Word2Vec skip-gram with negative sampling (Mikolov et al. 2013), trained in JAX.

The text half of the survey's emotion system (seed paper S000, ``shared/papers/S000_*``, §2.1)
turns transcripts into word vectors with Word2Vec before clustering them; this is that step. It
needs jax, flax and optax only (no gensim), and is deterministic given ``seed``.

Per epoch, as the reference word2vec tool does: frequent words are subsampled (a word of
frequency f is kept with probability ``min(1, sqrt(t / f) + t / f)``), each kept centre word takes
every context word within a window of ``b`` words, ``b`` drawn uniformly from 1..``window``, and
each (centre, context) pair is scored against ``negatives`` words drawn from the unigram
distribution raised to 3/4. The loss of a pair is
``-log σ(u_centre · v_context) - Σ_k log σ(-u_centre · v_k)``, averaged over a batch and minimised
with Adam; the word vectors are the centre ("input") table ``u``.

    vocab, vectors, losses = train_skipgram(sentences, SkipGramConfig(dim=100), seed=0)
    # vocab: [V] words, vectors: [V, 100] float32, losses: mean loss per epoch
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


@dataclasses.dataclass(frozen=True)
class SkipGramConfig:
    """Hyper-parameters of :func:`train_skipgram`.

    Attributes:
      dim: embedding size D.
      window: largest context distance (words each side); each centre word draws its own
        window from 1..``window``.
      negatives: negative samples per (centre, context) pair.
      epochs: passes over the corpus.
      batch_size: (centre, context) pairs per Adam step.
      lr: Adam learning rate.
      min_count: words seen fewer times are left out of the vocabulary (and of the pairs).
      subsample: the frequent-word subsampling threshold t (0 turns subsampling off).
    """

    dim: int = 100
    window: int = 5
    negatives: int = 5
    epochs: int = 5
    batch_size: int = 1024
    lr: float = 5e-3
    min_count: int = 2
    subsample: float = 1e-3

    def __post_init__(self):
        for name in ("dim", "window", "negatives", "epochs", "batch_size", "min_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.lr <= 0 or self.subsample < 0:
            raise ValueError(f"lr={self.lr} must be > 0 and subsample={self.subsample} >= 0")


class SkipGram(nn.Module):
    """The two embedding tables and the negative-sampling loss.

    Attributes:
      vocab_size: V, words in the vocabulary.
      dim: D, the embedding size.
    """

    vocab_size: int
    dim: int

    def setup(self):
        # The reference tool's initialisation: centre vectors U(-0.5/D, 0.5/D); context vectors
        # small too (it uses zeros, which would give the centre table no gradient at step 0).
        scale = 0.5 / self.dim
        init = nn.initializers.uniform(scale=2 * scale)
        self.centre = self.param("centre", lambda k, s: init(k, s) - scale,
                                 (self.vocab_size, self.dim))
        self.context = self.param("context", lambda k, s: init(k, s) - scale,
                                  (self.vocab_size, self.dim))

    def __call__(self, centre: jnp.ndarray, context: jnp.ndarray,
                 negatives: jnp.ndarray) -> jnp.ndarray:
        """centre [B] int32, context [B] int32, negatives [B, K] int32 -> mean loss (scalar)."""
        u = self.centre[centre]  # [B, D]
        pos = jnp.sum(u * self.context[context], axis=-1)  # [B]
        neg = jnp.einsum("bd,bkd->bk", u, self.context[negatives])  # [B, K]
        loss = -jax.nn.log_sigmoid(pos) - jnp.sum(jax.nn.log_sigmoid(-neg), axis=-1)
        return jnp.mean(loss)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init(key, vocab_size: int, cfg: SkipGramConfig):
    # One compiled call: initialising op by op would compile every small op on its own.
    key, init_key = jax.random.split(key)
    dummy = jnp.zeros((1,), jnp.int32)
    params = SkipGram(vocab_size, cfg.dim).init(
        init_key, dummy, dummy, jnp.zeros((1, cfg.negatives), jnp.int32))["params"]
    return params, optax.adam(cfg.lr).init(params), key


# Module level with the config static, so runs of one shape and config share one compilation.
@functools.partial(jax.jit, static_argnums=(6,))
def _step(params, opt_state, key, total, pairs, noise_cdf, cfg: SkipGramConfig):
    key, sub = jax.random.split(key)
    # Inverse-CDF sampling: O(B K log V), where categorical() would draw B K V Gumbel numbers.
    u = jax.random.uniform(sub, (pairs.shape[0], cfg.negatives))
    negs = jnp.minimum(jnp.searchsorted(noise_cdf, u, side="right"), noise_cdf.shape[0] - 1)
    model, tx = SkipGram(noise_cdf.shape[0], cfg.dim), optax.adam(cfg.lr)

    def loss_fn(p):
        return model.apply({"params": p}, pairs[:, 0], pairs[:, 1], negs)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    # The loss is summed on the device: no host sync per step.
    return optax.apply_updates(params, updates), opt_state, key, total + loss


def build_vocab(sentences: Sequence[Sequence[str]], min_count: int) -> tuple[list[str], np.ndarray]:
    """Words seen at least ``min_count`` times, most frequent first (ties alphabetical), and their
    counts [V] int64."""
    counts = collections.Counter(w for s in sentences for w in s)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return words, np.asarray([counts[w] for w in words], np.int64)


def skipgram_pairs(ids: Sequence[np.ndarray], counts: np.ndarray, window: int, subsample: float,
                   rng: np.random.Generator) -> np.ndarray:
    """One epoch's (centre, context) pairs [P, 2] int32, shuffled.

    Args:
      ids: per sentence, the vocabulary ids [n] of its in-vocabulary words, in order.
      counts: [V] corpus counts of the vocabulary's words (for subsampling).
      window: the largest context distance.
      subsample: the subsampling threshold t (0: keep every word).
      rng: draws the subsampling, the per-word windows and the shuffle.
    """
    freq = counts / max(counts.sum(), 1)
    keep_p = (np.minimum(1.0, np.sqrt(subsample / freq) + subsample / freq)
              if subsample > 0 else np.ones_like(freq))
    out = []
    for sent in ids:
        sent = sent[rng.random(len(sent)) < keep_p[sent]]
        n = len(sent)
        if n < 2:
            continue
        reach = rng.integers(1, window + 1, size=n)  # each centre word's own window
        for offset in range(1, window + 1):
            i = np.arange(n - offset)  # pairs (i, i + offset) and (i + offset, i)
            fwd = reach[i] >= offset
            bwd = reach[i + offset] >= offset
            out.append(np.stack([sent[i][fwd], sent[i + offset][fwd]], 1))
            out.append(np.stack([sent[i + offset][bwd], sent[i][bwd]], 1))
    if not out:
        return np.zeros((0, 2), np.int32)
    pairs = np.concatenate(out).astype(np.int32)
    return pairs[rng.permutation(len(pairs))]


def train_skipgram(
    sentences: Sequence[Sequence[str]], cfg: SkipGramConfig = SkipGramConfig(), seed: int = 0
) -> tuple[list[str], np.ndarray, list[float]]:
    """Trains skip-gram word vectors on tokenised ``sentences``.

    Args:
      sentences: lists of words (already lower-cased / split as the caller wants).
      cfg: the hyper-parameters.
      seed: fixes the initialisation, subsampling, windows, pair order and negative samples.

    Returns:
      ``(vocab, vectors, losses)``: the vocabulary [V] (see :func:`build_vocab`), the centre
      vectors [V, D] float32 in vocabulary order, and the mean training loss of each epoch.

    Raises:
      ValueError: fewer than two vocabulary words, or no (centre, context) pair in the corpus.
    """
    vocab, counts = build_vocab(sentences, cfg.min_count)
    if len(vocab) < 2:
        raise ValueError(f"word2vec: {len(vocab)} words seen >= min_count={cfg.min_count} times; "
                         "need at least 2")
    index = {w: i for i, w in enumerate(vocab)}
    ids = [np.asarray([index[w] for w in s if w in index], np.int32) for s in sentences]
    noise = counts.astype(np.float64) ** 0.75
    noise_cdf = jnp.asarray(np.cumsum(noise / noise.sum()), jnp.float32)  # [V], unigram^3/4

    params, opt_state, key = _init(jax.random.PRNGKey(seed), len(vocab), cfg)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(cfg.epochs):
        pairs = skipgram_pairs(ids, counts, cfg.window, cfg.subsample, rng)
        if len(pairs) == 0:
            raise ValueError("word2vec: no (centre, context) pair; sentences are too short")
        # Pad the last batch by wrapping around, so every step has one shape (one compilation).
        steps = -(-len(pairs) // cfg.batch_size)
        pad = steps * cfg.batch_size - len(pairs)
        pairs = np.concatenate([pairs, pairs[np.arange(pad) % len(pairs)]])
        total = np.float32(0.0)
        for s in range(steps):
            batch = pairs[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            params, opt_state, key, total = _step(params, opt_state, key, total, batch,
                                                  noise_cdf, cfg)
        losses.append(float(total) / steps)
    return vocab, np.asarray(params["centre"], np.float32), losses
