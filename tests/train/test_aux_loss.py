"""train.aux_loss_weight adds the model's aux_logits loss; weight 0 leaves the loss unchanged."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmer_jax.data.device import make_feature_step
from mmer_jax.schema import TrainConfig
from mmer_jax.train import steps as steps_lib


class _TwoHeads:
    """A stand-in model with main and auxiliary logits (the Flax apply signature)."""

    def apply(self, variables, inputs, train, rngs=None, mutable=()):
        w = variables["params"]["w"]
        logits = inputs["tokens"].astype(jnp.float32) @ w
        out = (logits, {"aux_logits": -logits})
        return (out, {}) if mutable is not None else out


def test_aux_weight_adds_the_aux_loss():
    features = make_feature_step(ml_collections.ConfigDict(dict(sample_rate=16000)))
    batch = {
        "tokens": jnp.array([[1, 2], [3, 1]], jnp.int32),
        "label": jnp.array([0, 1]),
        "weight": jnp.ones(2),
    }
    params = {"w": jnp.array([[0.5, -0.2], [0.1, 0.3]])}
    losses = {}
    for w in (0.0, 0.5):
        fn = steps_lib.make_loss_fn(_TwoHeads(), features, TrainConfig(aux_loss_weight=w))
        losses[w] = float(fn(params, {}, batch, jax.random.PRNGKey(0))[0])
    logits = batch["tokens"].astype(jnp.float32) @ params["w"]
    main = float(steps_lib.weighted_xent(logits, batch["label"], batch["weight"]))
    aux = float(steps_lib.weighted_xent(-logits, batch["label"], batch["weight"]))
    np.testing.assert_allclose(losses[0.0], main, rtol=1e-6)
    np.testing.assert_allclose(losses[0.5], main + 0.5 * aux, rtol=1e-6)


class _WithLossTerms:
    """A stand-in model that returns its own weighted loss terms in aux["loss_terms"]."""

    def apply(self, variables, inputs, train, rngs=None, mutable=()):
        w = variables["params"]["w"]
        logits = inputs["tokens"].astype(jnp.float32) @ w
        terms = {"recon": 0.25 * jnp.sum(w ** 2), "kl": jnp.float32(0.125)}
        out = (logits, {"loss_terms": terms})
        return (out, {}) if mutable is not None else out


def test_model_loss_terms_are_added_to_the_loss_and_the_gradient():
    features = make_feature_step(ml_collections.ConfigDict(dict(sample_rate=16000)))
    batch = {
        "tokens": jnp.array([[1, 2], [3, 1]], jnp.int32),
        "label": jnp.array([0, 1]),
        "weight": jnp.ones(2),
    }
    params = {"w": jnp.array([[0.5, -0.2], [0.1, 0.3]])}
    fn = steps_lib.make_loss_fn(_WithLossTerms(), features, TrainConfig())
    loss = float(fn(params, {}, batch, jax.random.PRNGKey(0))[0])
    logits = batch["tokens"].astype(jnp.float32) @ params["w"]
    main = float(steps_lib.weighted_xent(logits, batch["label"], batch["weight"]))
    extra = 0.25 * float(jnp.sum(params["w"] ** 2)) + 0.125
    np.testing.assert_allclose(loss, main + extra, rtol=1e-6)
    # The recon term's gradient (0.5 w) reaches the parameters.
    g = jax.grad(lambda p: fn(p, {}, batch, jax.random.PRNGKey(0))[0])(params)["w"]
    g_main = jax.grad(lambda w: steps_lib.weighted_xent(
        batch["tokens"].astype(jnp.float32) @ w, batch["label"], batch["weight"]))(params["w"])
    np.testing.assert_allclose(g, g_main + 0.5 * params["w"], rtol=1e-5, atol=1e-7)
    assert float(steps_lib.model_loss_terms({})) == 0.0
