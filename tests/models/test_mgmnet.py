"""MGMNet (S000 §3.3): config, 4-device mesh, overfitting, padding invariance (tokens, audio
frames, video frames, utterances), Pallas interpreter = XLA, the information bottleneck term,
dialogue context, training samples / evaluation uses the mean, unimodal variants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mmer_jax.models.systems.mgmnet import (
    MGMNet,
    MGMNetConfig,
    information_bottleneck_loss,
)
from mmer_jax.models.systems.mgmnet.parts import gaussian_kl, pool_time
from mmer_jax.registry import SYSTEMS

C, VOCAB, F_MEL, HW = 4, 12, 6, 8
TINY = dict(width=8, num_heads=2, rank=3, embed_dim=6, audio_pool=2, frame_widths=(4,),
            ib_dim=4, context_hidden=4, head_hidden=8, dropout=0.0)


def _model(modalities=("text", "audio", "frames"), **kw) -> MGMNet:
    cfg = MGMNetConfig(modalities=tuple(modalities), **{**TINY, **kw})
    return SYSTEMS["mgmnet"].build(cfg, C, VOCAB)


def _lengths_batch(lengths: dict, pad: dict, seed: int = 0, lead=()) -> dict:
    """A batch with given valid lengths per modality ([*lead, n] each) padded to max + pad[m];
    padding holds large garbage."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, lens in lengths.items():
        lens = np.asarray(lens)
        t = int(lens.max()) + pad.get(key, 0)
        mask = np.arange(t) < lens[..., None]  # [..., T]
        shape = {"tokens": (), "audio": (F_MEL,), "frames": (HW, HW, 3)}[key]
        if key == "tokens":
            x = np.where(mask, rng.integers(1, VOCAB, mask.shape), VOCAB - 1).astype(np.int32)
        else:
            x = rng.normal(size=mask.shape + shape).astype(np.float32)
            x = np.where(mask.reshape(mask.shape + (1,) * len(shape)), x, 1e3).astype(np.float32)
        out[key], out[f"{key}_mask"] = x, mask
    n = np.asarray(lengths["tokens"]).shape
    out["weight"] = np.ones(n, np.float32)
    out["label"] = (np.arange(np.prod(n)).reshape(n) % C).astype(np.int32)
    return out


def _utterances(n=8, seed=0, pad=None):
    rng = np.random.default_rng(seed)
    lengths = {"tokens": rng.integers(1, 6, n), "audio": rng.integers(1, 9, n),
               "frames": rng.integers(1, 4, n)}
    return _lengths_batch(lengths, pad or {}, seed)


# Compilation dominates these tests on CPU: eager init/apply compiles one tiny program per op and
# shape (and an eager threefry draw per parameter shape), so the fast tests run the model jitted,
# with "rbg" keys (a fraction of threefry's compile time) where the values drawn do not matter.
def _init(model, batch):
    return jax.jit(lambda b: model.init(jax.random.key(0, impl="rbg"), b, train=False))(batch)


def _eval(model):
    return jax.jit(lambda v, b: model.apply(v, b, train=False))


def _xent(logits, labels):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None], axis=-1).mean()


def test_registered_and_config_checks():
    assert SYSTEMS["mgmnet"].config_class is MGMNetConfig
    assert MGMNetConfig().name == "mgmnet"
    with pytest.raises(ValueError, match="non-empty subset"):
        MGMNetConfig(modalities=("face",))
    with pytest.raises(ValueError, match="non-empty subset"):
        MGMNetConfig(modalities=())
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MGMNetConfig(width=10, num_heads=4)
    with pytest.raises(ValueError, match="ib_beta"):
        MGMNetConfig(ib_beta=-1.0)
    with pytest.raises(ValueError, match="rank=0"):
        MGMNetConfig(rank=0)
    with pytest.raises(ValueError, match="implementation='nope'"):
        MGMNetConfig(implementation="nope")


@pytest.mark.slow  # ~20 s of compilation; the trainer's 4-device path stays in the default run
# (tests/train/test_parallel.py, and the fusions' mesh tests)
def test_forward_and_backward_on_a_four_device_mesh():
    if jax.device_count() < 4:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=4")
    model = _model()
    batch = _utterances(8)
    params = model.init(jax.random.PRNGKey(0), batch, train=False)["params"]

    def loss(p, b):
        logits, aux = model.apply({"params": p}, b, train=True,
                                  rngs={"dropout": jax.random.PRNGKey(3)})
        return _xent(logits, b["label"]) + aux["loss_terms"]["information_bottleneck"]

    # Auto axes, as the run's mesh (mmer_jax.train.sharding.make_mesh): the embedding lookup of
    # sharded tokens is a gather whose output sharding XLA then chooses.
    mesh = jax.make_mesh((4,), ("data",), (jax.sharding.AxisType.Auto,))
    data, rep = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    fn = jax.jit(jax.value_and_grad(loss), in_shardings=(rep, data))
    xs = jax.device_put(batch, data)
    assert len(xs["audio"].sharding.device_set) == 4  # 2 examples per device
    l4, g4 = fn(jax.device_put(params, rep), xs)
    l1, g1 = jax.jit(jax.value_and_grad(loss))(params, batch)
    assert float(l4) == pytest.approx(float(l1), rel=1e-5)
    for a, b in zip(jax.tree.leaves(g4), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    for part in ("enc_text", "enc_audio", "enc_frames", "bridge", "bilinear", "bottleneck"):
        grads = jax.tree.leaves(g4[part])
        assert all(np.isfinite(np.asarray(g)).all() for g in grads), part
        assert sum(float(jnp.abs(g).sum()) for g in grads) > 0, part


@pytest.mark.slow  # a 250-step training scan of the whole model: ~10 s of CPU
def test_overfits_eight_examples():
    """Random labels: the model (with z sampled, as in training) must pass information through."""
    model = _model()
    batch = _utterances(8, seed=4)
    labels = jnp.asarray(np.random.default_rng(6).integers(0, C, 8))
    params = model.init(jax.random.PRNGKey(0), batch, train=False)["params"]
    tx = optax.adam(1e-2)

    def step(carry, i):
        p, s = carry

        def loss(q):
            logits, aux = model.apply({"params": q}, batch, train=True,
                                      rngs={"dropout": jax.random.fold_in(jax.random.PRNGKey(1),
                                                                          i)})
            return _xent(logits, labels) + sum(aux["loss_terms"].values())

        value, g = jax.value_and_grad(loss)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), value

    (params, _), losses = jax.jit(
        lambda p: jax.lax.scan(step, (p, tx.init(p)), jnp.arange(250)))(params)
    logits, _ = model.apply({"params": params}, batch, train=False)
    assert float(losses[-1]) < 0.1 < float(losses[0])
    assert (np.asarray(logits.argmax(-1)) == np.asarray(labels)).all()


def test_invariant_to_padding_of_tokens_frames_audio_and_utterances():
    """A dialogue batch [2 dialogues, 2 utterances] against the same one with more padding in
    every modality, an extra padded utterance and garbage everywhere padded."""
    model = _model()
    lengths = {"tokens": [[3, 1], [5, 2]], "audio": [[7, 2], [4, 5]], "frames": [[1, 3], [2, 2]]}
    small = _lengths_batch(lengths, {}, seed=1)
    small["utt_mask"] = np.ones((2, 2), bool)
    # 3 utterances, the third padded (lengths 1 so its garbage is "valid" inside the utterance).
    big_len = {k: [row + [1] for row in v] for k, v in lengths.items()}
    big = _lengths_batch(big_len, {"tokens": 3, "audio": 5, "frames": 2}, seed=2)
    big["utt_mask"] = np.array([[True, True, False]] * 2)
    big["weight"][:, 2] = 0.0
    for key in ("tokens", "audio", "frames"):  # copy the real utterances' valid values in
        s, m = small[key], small[f"{key}_mask"]
        region = big[key][:, :2, : s.shape[2]]
        m = m.reshape(m.shape + (1,) * (s.ndim - 3))
        big[key][:, :2, : s.shape[2]] = np.where(m, s, region)
    params = _init(model, small)
    apply = jax.jit(lambda b: model.apply(params, b, train=False))
    ref, aux_s = apply(small)
    out, aux_b = apply(big)
    assert ref.shape == (2, 2, C) and out.shape == (2, 3, C)
    np.testing.assert_allclose(np.asarray(out[:, :2]), np.asarray(ref), rtol=1e-5, atol=1e-5)
    assert float(np.abs(np.asarray(out[:, 2])).max()) == 0.0  # padded utterances: zero logits
    ib_s = float(aux_s["loss_terms"]["information_bottleneck"])
    assert float(aux_b["loss_terms"]["information_bottleneck"]) == pytest.approx(ib_s, rel=1e-5)
    for m in ("text", "audio", "frames"):
        np.testing.assert_allclose(np.asarray(aux_b[f"feat_{m}"][:, :2]),
                                   np.asarray(aux_s[f"feat_{m}"]), rtol=1e-5, atol=1e-5)
    # A valid audio frame does matter (the check above can fail).
    small["audio"][0, 0, 0, 0] += 3.0  # one mel bin (a shift of all bins is normalised away)
    assert not np.allclose(np.asarray(apply(small)[0][0, 0]), np.asarray(ref[0, 0]), atol=1e-5)


def test_dialogue_context_reaches_other_utterances_only_in_their_dialogue():
    model = _model(("text",))
    lengths = {"tokens": [[3, 2, 4], [2, 5, 1]]}
    batch = _lengths_batch(lengths, {}, seed=3)
    batch["utt_mask"] = np.ones((2, 3), bool)
    params = _init(model, batch)
    apply = jax.jit(lambda b: model.apply(params, b, train=False)[0])
    ref = np.asarray(apply(batch))
    changed = {k: np.array(v) for k, v in batch.items()}
    changed["tokens"][0, 0, 0] = (changed["tokens"][0, 0, 0] % (VOCAB - 1)) + 1
    assert changed["tokens"][0, 0, 0] != batch["tokens"][0, 0, 0]
    out = np.asarray(apply(changed))
    assert not np.allclose(out[0, 2], ref[0, 2], atol=1e-6)  # the Bi-LSTM carries it forward
    np.testing.assert_allclose(out[1], ref[1], rtol=1e-6)  # the other dialogue is untouched
    # An utterance batch is a one-utterance dialogue: logits [B, C].
    utt = {k: v[:, 0] for k, v in batch.items() if k != "utt_mask"}
    apply_any = _eval(model)
    logits, aux = apply_any(params, utt)
    assert logits.shape == (2, C) and aux["feat_text"].shape == (2, TINY["width"])
    np.testing.assert_allclose(np.asarray(logits), np.asarray(apply_any(
        params, {**{k: v[:, :1] for k, v in batch.items()}})[0][:, 0]), rtol=1e-5,
        atol=1e-6)


@pytest.mark.slow  # the Pallas interpreter, forward and backward: ~15 s of CPU
def test_kernel_path_interpret_matches_xla():
    batch = _utterances(2, seed=5)
    batch = {k: v for k, v in batch.items() if not k.startswith("frames")}
    xla = _model(("text", "audio"))
    kern = _model(("text", "audio"), implementation="interpret")
    params = xla.init(jax.random.PRNGKey(0), batch, train=False)["params"]

    def run(model):
        def loss(p):
            logits, _ = model.apply({"params": p}, batch, train=False)
            return _xent(logits, batch["label"]), logits

        return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

    (lx, ox), gx = run(xla)
    (li, oi), gi = run(kern)
    np.testing.assert_allclose(np.asarray(oi), np.asarray(ox), rtol=1e-5, atol=1e-5)
    assert float(li) == pytest.approx(float(lx), rel=1e-5)
    for a, b in zip(jax.tree.leaves(gi), jax.tree.leaves(gx), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    q = gi["bridge"]["bridge_text_to_audio_0"]["mha"]["query"]["kernel"]
    assert float(jnp.abs(q).sum()) > 0


def test_kl_by_hand_and_the_weighted_mean_over_real_rows():
    z = jnp.zeros((3, 5))
    assert float(jnp.abs(gaussian_kl(z, z)).max()) == 0.0
    np.testing.assert_allclose(np.asarray(gaussian_kl(jnp.ones((2, 4)), jnp.zeros((2, 4)))),
                               [2.0, 2.0])  # 0.5 * sum(mu^2)
    lv = jnp.full((1, 3), np.log(2.0))
    np.testing.assert_allclose(np.asarray(gaussian_kl(jnp.zeros((1, 3)), lv)),
                               [1.5 * (1.0 - np.log(2.0))], rtol=1e-6)
    mu = jnp.array([[1.0, 0.0], [2.0, 0.0], [5.0, 5.0]])  # KL 0.5, 2.0, 25.0
    real = jnp.array([True, True, False])
    assert float(information_bottleneck_loss(mu, jnp.zeros_like(mu), real, 0.1)) == (
        pytest.approx(0.1 * 1.25))
    assert float(information_bottleneck_loss(mu, jnp.zeros_like(mu), jnp.zeros(3), 1.0)) == 0.0


def test_information_bottleneck_term_gradient_and_beta_zero():
    batch = _utterances(4, seed=7)
    batch["weight"][3] = 0.0  # a padding row: not in the mean
    model = _model(("text", "audio"), ib_beta=0.5)
    batch = {k: v for k, v in batch.items() if not k.startswith("frames")}
    off = _model(("text", "audio"), ib_beta=0.0)

    @jax.jit  # init, the term's gradient and the beta-0 model in one compilation
    def run(batch):
        params = model.init(jax.random.key(0, impl="rbg"), batch, train=False)["params"]

        def term(p):
            _, aux = model.apply({"params": p}, batch, train=True,
                                 rngs={"dropout": jax.random.key(1, impl="rbg")})
            return aux["loss_terms"]["information_bottleneck"], aux

        # beta 0: the same parameters
        return jax.value_and_grad(term, has_aux=True)(params), off.apply(
            {"params": params}, batch, train=False)

    ((value, aux), g), (logits, aux0) = run(batch)
    kl = gaussian_kl(aux["mu"], aux["logvar"])
    assert float(value) == pytest.approx(0.5 * float(kl[:3].mean()), rel=1e-5)
    assert value.dtype == jnp.float32 and np.isfinite(float(value)) and float(value) > 0
    leaves = jax.tree.leaves(g)
    assert all(np.isfinite(np.asarray(x)).all() for x in leaves)
    assert float(np.abs(np.asarray(g["bottleneck"]["mu"]["kernel"])).sum()) > 0
    assert aux0["loss_terms"] == {} and logits.shape == (4, C)


@pytest.mark.slow  # 7 s; the bottleneck term stays fast in its own test
def test_training_samples_z_and_evaluation_uses_the_mean():
    model = _model(("text", "audio"))
    batch = {k: v for k, v in _utterances(6, seed=8).items() if not k.startswith("frames")}
    params = model.init(jax.random.PRNGKey(0), batch, train=False)
    ev1, aux_e = model.apply(params, batch, train=False)
    ev2, _ = model.apply(params, batch, train=False)
    np.testing.assert_array_equal(np.asarray(ev1), np.asarray(ev2))
    np.testing.assert_array_equal(np.asarray(aux_e["z"]), np.asarray(aux_e["mu"]))
    tr1, aux_1 = model.apply(params, batch, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    tr2, aux_2 = model.apply(params, batch, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    np.testing.assert_allclose(np.asarray(aux_1["mu"]), np.asarray(aux_e["mu"]), rtol=1e-6)
    assert not np.allclose(np.asarray(tr1), np.asarray(tr2))
    # At initialisation logvar = 0: z - mu is standard normal noise.
    np.testing.assert_allclose(np.asarray(aux_1["logvar"]), 0.0, atol=1e-6)
    eps = np.asarray(aux_1["z"] - aux_1["mu"]).ravel()
    assert abs(eps.mean()) < 0.6 and 0.5 < eps.std() < 1.6


@pytest.mark.parametrize("modalities", [("text",), ("audio", "frames"),
                                        pytest.param(("frames",), marks=pytest.mark.slow)])
def test_unimodal_and_text_free_variants(modalities):
    batch = _utterances(3, seed=9)
    model = _model(modalities)

    @jax.jit  # init and apply in one compilation
    def run(batch):
        params = model.init(jax.random.key(0, impl="rbg"), batch, train=False)["params"]
        return params, model.apply({"params": params}, batch, train=False)

    params, (logits, aux) = run(batch)
    assert logits.shape == (3, C) and np.isfinite(np.asarray(logits)).all()
    assert {k for k in aux if k.startswith("feat_")} == {f"feat_{m}" for m in modalities}
    bridge = "text" if "text" in modalities else sorted(modalities)[0]
    crossed = {k for k in params["bridge"] if k.startswith("bridge_")}
    partners = [m for m in modalities if m != bridge] or [bridge]
    assert crossed == {f"bridge_{bridge}_to_{p}_0" for p in partners}


def test_audio_window_pooling_ignores_padding():
    x = jnp.arange(10.0).reshape(1, 5, 2)
    mask = jnp.array([[True, True, True, False, False]])
    y, m = pool_time(x, mask, 2)
    np.testing.assert_allclose(np.asarray(y[0]), [[1.0, 2.0], [4.0, 5.0], [0.0, 0.0]])
    assert np.asarray(m).tolist() == [[True, True, False]]
    with pytest.raises(ValueError, match="pool=0"):
        pool_time(x, mask, 0)
