"""The text utterance encoder's variants (cnn, bow, cnn+bow with hashed bigrams, bilstm)."""

import jax
import numpy as np
import pytest

from mmer_jax.models.encoders.text_cnn import TextCNN, TextCNNConfig
from mmer_jax.models.layers import LSTM

# The parameters' key: with "rbg" the eager inits' random programs compile several times faster
# than with threefry (no test here depends on the stream; word dropout keeps its own key).
KEY = jax.random.key(0, impl="rbg")


@pytest.mark.parametrize("kind, buckets", [("cnn", 0), ("bow", 0), ("bow", 31), ("cnn+bow", 31)])
def test_kinds_run_and_ignore_padding(kind, buckets):
    cfg = TextCNNConfig(vocab_size=50, embed_dim=8, widths=(2, 3), filters=4, out=6, dropout=0.0,
                        kind=kind, bigram_buckets=buckets)
    tokens = np.array([[5, 7, 9, 0, 0], [3, 4, 0, 0, 0]], np.int32)
    mask = tokens > 0
    model = TextCNN(cfg)
    params = model.init(KEY, tokens, mask, False)
    apply = jax.jit(lambda p, t, m: model.apply(p, t, m, False))  # one program for both calls
    out = apply(params, tokens, mask)
    assert out.shape == (2, 6)
    noisy = np.where(mask, tokens, 41)  # other ids in the padding: same features
    np.testing.assert_allclose(out, apply(params, noisy, mask), atol=1e-6)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="kind='lstm' must be one of cnn, bow, cnn\\+bow, bilstm"):
        TextCNNConfig(vocab_size=10, embed_dim=4, kind="lstm")


def test_bilstm_kind_max_pools_real_words_only():
    cfg = TextCNNConfig(vocab_size=50, embed_dim=8, dropout=0.0, kind="bilstm", lstm_hidden=5,
                        lstm_layers=2, init_scheme="pytorch")
    tokens = np.array([[5, 7, 9, 0, 0], [3, 4, 0, 0, 0]], np.int32)
    mask = tokens > 0
    model = TextCNN(cfg)
    params = model.init(KEY, tokens, mask, False)
    apply = jax.jit(lambda p, t, m: model.apply(p, t, m, False))  # one program per width
    out = apply(params, tokens, mask)
    assert out.shape == (2, 10)  # 2 directions x 5
    # Padding changes nothing: neither its ids nor its length (a shorter padded width).
    noisy = np.where(mask, tokens, 41)
    np.testing.assert_allclose(out, apply(params, noisy, mask), atol=1e-6)
    np.testing.assert_allclose(out, apply(params, tokens[:, :3], mask[:, :3]), atol=1e-5)


def test_pytorch_lstm_init_draws_uniform_within_one_over_sqrt_hidden():
    x, mask = np.ones((2, 4, 3), np.float32), np.ones((2, 4), bool)
    params = LSTM(16, init_scheme="pytorch").init(KEY, x, mask)["params"]
    k = 1 / 4.0  # 1/sqrt(16)
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    kernels = [np.asarray(v) for path, v in leaves if path[-1].key == "kernel"]
    biases = [np.asarray(v) for path, v in leaves if path[-1].key == "bias"]
    assert len(kernels) == 8 and len(biases) == 4  # 4 gates x (input, recurrent); 4 biases
    for w in kernels:  # not orthogonal or lecun-normal: PyTorch's bounded uniform
        assert np.abs(w).max() <= k and np.abs(w).max() > 0.8 * k
    for b in biases:
        assert np.abs(b).max() <= k * 2**0.5 and np.abs(b).max() > 0
    with pytest.raises(ValueError, match="init_scheme='torch'"):
        LSTM(4, init_scheme="torch").init(KEY, x, mask)


def test_embedding_init_std_is_configurable():
    for std in (1.0, 0.1):
        cfg = TextCNNConfig(vocab_size=2000, embed_dim=64, embed_init_std=std)
        tokens = np.ones((1, 3), np.int32)
        params = TextCNN(cfg).init(KEY, tokens, tokens > 0, False)
        emb = np.asarray(params["params"]["embed"]["embedding"])
        assert abs(float(np.std(emb)) - std) < 0.05 * std


def test_unk_id_is_the_tokenizers():
    from mmer_jax.data.text import UNK, Tokenizer
    from mmer_jax.models.encoders.text_cnn import UNK_ID

    assert UNK_ID == UNK == Tokenizer(["<pad>", "<unk>", "a"]).index["<unk>"]


def test_word_dropout_sends_real_words_to_unk_in_training_only():
    # kind "bow" with embed_dim 1 and the embedding row of id i set to i: the mean-pooled feature
    # then reads back the mean token id, so the share of words sent to <unk> (id 1) is visible.
    n, length, p = 400, 12, 0.25
    cfg = TextCNNConfig(vocab_size=50, embed_dim=1, out=1, dropout=0.0, kind="bow",
                        word_dropout=p)
    tokens = np.full((n, length), 41, np.int32)
    tokens[:, 9:] = 0  # 9 real words, 3 padding
    mask = tokens > 0
    model = TextCNN(cfg)
    params = model.init(KEY, tokens, mask, False)
    params["params"]["embed"]["embedding"] = np.arange(50, dtype=np.float32)[:, None]
    params["params"]["fc"] = {"kernel": np.array([[1.0], [0.0]], np.float32),
                              "bias": np.zeros(1, np.float32)}
    # Jitted (one program per mode instead of one per eager op); the same threefry dropout key.
    mean_id = jax.jit(lambda train: model.apply(params, tokens, mask, train,  # noqa: E731
                                                rngs={"dropout": jax.random.PRNGKey(1)})[:, 0],
                      static_argnums=0)
    np.testing.assert_allclose(mean_id(False), 41.0, atol=1e-5)  # evaluation: untouched
    dropped = (41.0 - np.asarray(mean_id(True))) / 40.0  # per utterance, share sent to id 1
    assert abs(dropped.mean() - p) < 0.02  # 3,600 words: std of the share ~0.007
    assert dropped.min() >= 0.0  # padding never becomes a word
    with pytest.raises(ValueError, match="word_dropout=1.0 must be in"):
        TextCNNConfig(vocab_size=10, embed_dim=4, word_dropout=1.0)
