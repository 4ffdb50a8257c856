"""The text utterance encoder's variants (cnn, bow, cnn+bow with hashed bigrams)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.models.encoders.text_cnn import TextCNN, TextCNNConfig


@pytest.mark.parametrize("kind, buckets", [("cnn", 0), ("bow", 0), ("bow", 31), ("cnn+bow", 31)])
def test_kinds_run_and_ignore_padding(kind, buckets):
    cfg = TextCNNConfig(vocab_size=50, embed_dim=8, widths=(2, 3), filters=4, out=6, dropout=0.0,
                        kind=kind, bigram_buckets=buckets)
    tokens = jnp.array([[5, 7, 9, 0, 0], [3, 4, 0, 0, 0]], jnp.int32)
    mask = tokens > 0
    model = TextCNN(cfg)
    params = model.init(jax.random.PRNGKey(0), tokens, mask, False)
    out = model.apply(params, tokens, mask, False)
    assert out.shape == (2, 6)
    noisy = jnp.where(mask, tokens, 41)  # other ids in the padding: same features
    np.testing.assert_allclose(out, model.apply(params, noisy, mask, False), atol=1e-6)


def test_unknown_kind_is_rejected():
    cfg = TextCNNConfig(vocab_size=10, embed_dim=4, kind="lstm")
    tokens = jnp.ones((1, 3), jnp.int32)
    with pytest.raises(ValueError, match="kind='lstm'"):
        TextCNN(cfg).init(jax.random.PRNGKey(0), tokens, tokens > 0, False)


def test_embedding_init_std_is_configurable():
    for std in (1.0, 0.1):
        cfg = TextCNNConfig(vocab_size=2000, embed_dim=64, embed_init_std=std)
        tokens = jnp.ones((1, 3), jnp.int32)
        params = TextCNN(cfg).init(jax.random.PRNGKey(0), tokens, tokens > 0, False)
        emb = params["params"]["embed"]["embedding"]
        assert abs(float(jnp.std(emb)) - std) < 0.05 * std
