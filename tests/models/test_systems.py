"""Seed systems (s001, s002, s003) and baselines at tiny sizes: build, train, overfit, masks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmer_jax.errors import UsageError
from mmer_jax.models import build_model, profile
from mmer_jax.models.layers import LSTM

from .jax_test_util import key

C = 4  # classes
VOCAB = 50

# Tiny size knobs per system (nested as in the ``model`` section); everything else keeps the
# paper defaults of each system's config class.
_TINY_TEXT = dict(embed_dim=16, filters=8, out=16, dropout=0.1)
TINY = {
    "s001": dict(
        modalities=["audio", "frames"],
        audio=dict(depth=(1, 1), width=8, stem_stride=1, stem_pool=False),
        video=dict(depth=(1, 1), width=8, stem_stride=1, stem_pool=False),
        lstm_hidden=16,
    ),
    "s003": dict(
        image=dict(width=8, blocks=((8, 2),), last=16, embed=16),
        audio=dict(channels=(8,)),
        lstm_hidden=16,
        fc_hidden=16,
    ),
    "s002": dict(
        modalities=["text", "audio", "frames"],
        text=_TINY_TEXT,
        audio=dict(hidden=8, num_layers=1, linear=(16, 16), attn_hidden=8),
        visual=dict(channels=(8,), out=16),
        context_hidden=16,
        num_heads=2,
        head_hidden=16,
    ),
    # A variant is "system:what differs".
    "s002:speaker_context": dict(modalities=["text"], text=_TINY_TEXT, context_hidden=16,
                                 num_heads=2, head_hidden=16, speaker_context=True),
    "text_cnn": dict(text=_TINY_TEXT),
    "bc_lstm": dict(text=_TINY_TEXT, context_hidden=16, head_hidden=16),
    "cmn": dict(text=_TINY_TEXT, memory_hidden=16, hops=2, window=3),
}
DIALOGUE = {"s002", "s002:speaker_context", "text_cnn", "bc_lstm", "cmn"}
MAX_STEPS = 120


def make_cfg(name: str, **over) -> dict:
    """The ``model`` section of a tiny ``name``."""
    return {"name": name.split(":")[0], "dropout": 0.1, **TINY[name], **over}


def build(cfg: dict):
    return build_model(cfg, num_classes=C, vocab_size=VOCAB)


def _lengths_mask(rng, shape, t):
    """[*shape, t] prefix mask with random lengths in [1, t]."""
    lengths = rng.integers(1, t + 1, size=shape)
    return np.arange(t) < lengths[..., None]


def utterance_batch(seed: int, b: int = 8):
    rng = np.random.default_rng(seed)
    ta, tv = 16, 4
    return {
        "audio": rng.normal(size=(b, ta, 8)).astype(np.float32),
        "audio_mask": _lengths_mask(rng, (b,), ta),
        "frames": rng.uniform(size=(b, tv, 8, 8, 3)).astype(np.float32),
        "frames_mask": _lengths_mask(rng, (b,), tv),
        "face": rng.uniform(size=(b, tv, 8, 8, 3)).astype(np.float32),
        "face_mask": _lengths_mask(rng, (b,), tv),
        "label": rng.integers(0, C, size=(b,)).astype(np.int32),
    }


def dialogue_batch(seed: int, b: int = 2, u: int = 5):
    """Two dialogues, the second with two padded utterances: 8 labelled utterances."""
    rng = np.random.default_rng(seed)
    length, ta, tv = 6, 8, 4
    utt = np.arange(u)[None] < np.array([u, u - 2])[:, None]
    tmask = _lengths_mask(rng, (b, u), length) & utt[..., None]
    return {
        "tokens": np.where(tmask, rng.integers(1, VOCAB, size=(b, u, length)), 0).astype(np.int32),
        "tokens_mask": tmask,
        "audio": rng.normal(size=(b, u, ta, 8)).astype(np.float32),
        "audio_mask": _lengths_mask(rng, (b, u), ta) & utt[..., None],
        "frames": rng.uniform(size=(b, u, tv, 8, 8, 3)).astype(np.float32),
        "frames_mask": _lengths_mask(rng, (b, u), tv) & utt[..., None],
        "utt_mask": utt,
        "speaker": rng.integers(0, 2, size=(b, u)).astype(np.int32),
        "label": rng.integers(0, C, size=(b, u)).astype(np.int32),
        "weight": utt.astype(np.float32),
    }


def scramble_padding(batch, seed: int = 99):
    """Replaces every padded value (steps, frames, words, whole utterances) with noise."""
    rng = np.random.default_rng(seed)
    out = dict(batch)
    utt = batch.get("utt_mask")
    for field in ("audio", "frames", "face", "tokens"):
        if field not in batch:
            continue
        x, m = batch[field], batch[f"{field}_mask"]
        m = m.reshape(m.shape + (1,) * (x.ndim - m.ndim))
        if field == "tokens":
            noise = rng.integers(-5, 10 * VOCAB, size=x.shape).astype(np.int32)
        else:
            noise = rng.normal(scale=5.0, size=x.shape).astype(np.float32)
        out[field] = np.where(m, x, noise)
    if utt is not None:  # padded utterances: scramble their masks and speakers too
        for field in ("tokens_mask", "audio_mask", "frames_mask"):
            noise = rng.uniform(size=batch[field].shape) < 0.5
            out[field] = np.where(utt[..., None], batch[field], noise)
        out["speaker"] = np.where(utt, batch["speaker"], rng.integers(0, 5, size=utt.shape))
    return out


def make_batch(name: str, seed: int = 0):
    return dialogue_batch(seed) if name in DIALOGUE else utterance_batch(seed)


def init(model, batch):
    # Jitted: eager init runs every ResNet/LSTM op one by one and is several times slower.
    rngs = {"params": key(0), "dropout": key(1)}
    return jax.jit(lambda r, b: model.init(r, b, train=False))(rngs, batch)


def loss_fn(logits, batch):
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    w = batch.get("weight", jnp.ones_like(ce))
    return jnp.sum(ce * w) / jnp.maximum(jnp.sum(w), 1.0)


def make_train_step(model, tx):
    @jax.jit
    def step(params, stats, opt_state, batch, rng):
        def f(p):
            variables = {"params": p, **({"batch_stats": stats} if stats is not None else {})}
            (logits, _), new = model.apply(
                variables, batch, train=True, rngs={"dropout": rng}, mutable=["batch_stats"]
            )
            return loss_fn(logits, batch), (logits, new.get("batch_stats"))

        (loss, (logits, stats2)), grads = jax.value_and_grad(f, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats2, opt_state, loss, logits

    return step


def accuracy(logits, batch):
    hit = (np.argmax(np.asarray(logits), -1) == batch["label"]).astype(np.float32)
    w = batch.get("weight", np.ones_like(hit))
    return float(np.sum(hit * w) / np.sum(w))


# S002's speaker-context variant compiles a second S002 (11 s); its context is checked fast by
# test_s002_speaker_context_reads_its_own_speakers_turns_only, the whole step with -m slow.
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n == "s002:speaker_context" else n
    for n in sorted(TINY)])
def test_trains_overfits_and_ignores_padding(name):
    model = build(make_cfg(name))
    batch = make_batch(name)
    variables = init(model, batch)
    predict = jax.jit(lambda v, b: model.apply(v, b, train=False)[0])
    logits = predict(variables, batch)
    expect = (2, 5, C) if name in DIALOGUE else (8, C)
    assert logits.shape == expect
    assert np.all(np.isfinite(np.asarray(logits)))

    # Mask invariance (eval): noise in every padded position leaves valid logits unchanged.
    scrambled = predict(variables, scramble_padding(batch))
    valid = batch["utt_mask"] if name in DIALOGUE else np.ones(8, bool)
    np.testing.assert_allclose(np.asarray(scrambled)[valid], np.asarray(logits)[valid], atol=1e-5)

    # Training: the loss goes down and 8 random examples are fitted within a step budget.
    tx = optax.adam(1e-2)
    params, stats = variables["params"], variables.get("batch_stats")
    opt_state = jax.jit(tx.init)(params)  # eager: one zeros program per parameter shape
    step = make_train_step(model, tx)
    with_stats = lambda p, s: {"params": p, **({"batch_stats": s} if s is not None else {})}  # noqa: E731
    losses, acc = [], 0.0
    for i in range(MAX_STEPS):
        params, stats, opt_state, loss, _ = step(params, stats, opt_state, batch, key(i))
        losses.append(float(loss))
        if i % 10 == 9:
            acc = accuracy(predict(with_stats(params, stats), batch), batch)
            if acc >= 0.9:
                break
    assert np.mean(losses[-3:]) < losses[0]
    assert acc >= 0.9, f"{name}: train accuracy {acc:.2f} after {len(losses)} steps"


@pytest.mark.parametrize("mods", [["audio"], ["frames"]])
def test_s001_single_branch(mods):
    model = build(make_cfg("s001", modalities=mods))
    batch = utterance_batch(1)
    logits, aux = model.apply(init(model, batch), batch, train=False)
    assert logits.shape == (8, C) and set(aux) == {f"feat_{m}" for m in mods}


def test_dialogue_models_accept_utterance_batches():
    batch = dialogue_batch(2)
    flat = {"tokens": batch["tokens"][0], "tokens_mask": batch["tokens_mask"][0]}  # [U, L]
    model = build(make_cfg("text_cnn"))
    variables = init(model, batch)
    logits, _ = model.apply(variables, flat, train=False)
    dial, _ = model.apply(variables, batch, train=False)
    assert logits.shape == (5, C)
    np.testing.assert_allclose(logits, dial[0], atol=1e-5)  # text_cnn ignores context


def test_cmn_uses_only_the_past():
    model = build(make_cfg("cmn", dropout=0.0))
    batch = dialogue_batch(3)
    variables = init(model, batch)
    logits, _ = model.apply(variables, batch, train=False)
    later = dict(batch, tokens=batch["tokens"].copy())
    later["tokens"][:, 3:] = np.where(batch["tokens_mask"][:, 3:], 7, 0)
    changed, _ = model.apply(variables, later, train=False)
    np.testing.assert_allclose(changed[:, :3], logits[:, :3], atol=1e-5)
    assert not np.allclose(changed[0, 3:], logits[0, 3:])


def test_s002_same_logits_through_pallas_interpret():
    batch = dialogue_batch(4)
    cfg = make_cfg("s002", modalities=["text"])  # the attention op is what differs
    xla = build(cfg)
    variables = init(xla, batch)
    interp = build({**cfg, "implementation": "interpret"})
    a, _ = xla.apply(variables, batch, train=False)
    b, _ = interp.apply(variables, batch, train=False)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, rtol=1e-4)


def test_profile_functions_positive():
    model = build(make_cfg("s003", modalities=["face", "audio"]))
    batch = utterance_batch(5, b=2)
    batch.pop("label")
    variables = init(model, batch)
    assert profile.count_params(variables) == profile.count_params(variables["params"]) > 0
    jaxpr_flops = profile.flops_per_example(model, variables, batch)
    xla_flops = profile.flops_per_example(model, variables, batch, method="xla")
    assert jaxpr_flops > 0 and xla_flops > 0
    assert profile.latency_ms(model, variables, batch, repeats=3) > 0


def test_s002_speaker_context_reads_its_own_speakers_turns_only():
    cfg = make_cfg("s002", modalities=["text"], dropout=0.0, speaker_context=True)
    model = build(cfg)
    batch = dict(dialogue_batch(5), speaker=np.array([[0, 1, 0, 1, 1], [1, 0, 0, 1, 0]], np.int32))
    variables = init(model, batch)
    _, aux = model.apply(variables, batch, train=False)
    h = TINY["s002"]["context_hidden"]
    assert aux["context"].shape == (2, 5, 4 * h)
    # New words in every speaker-1 turn: the speaker contexts of speaker-0 turns stay as they
    # were, those of speaker-1 turns and the dialogue context (which reads all turns) move.
    other = dict(batch, tokens=batch["tokens"].copy())
    one = (batch["speaker"] == 1) & batch["utt_mask"]
    other["tokens"][one] = np.where(batch["tokens_mask"][one], 7, 0)
    _, moved = model.apply(variables, other, train=False)
    zero = (batch["speaker"] == 0) & batch["utt_mask"]
    own, new = np.asarray(aux["context"]), np.asarray(moved["context"])
    np.testing.assert_allclose(new[zero][:, 2 * h:], own[zero][:, 2 * h:], atol=1e-5)
    assert not np.allclose(new[one][:, 2 * h:], own[one][:, 2 * h:])
    assert not np.allclose(new[zero][:, : 2 * h], own[zero][:, : 2 * h])
    # Padded turns stay zero whatever speaker id they carry; every real turn has a context.
    assert np.all(own[~batch["utt_mask"]] == 0)
    assert np.all(np.any(own[batch["utt_mask"]][:, 2 * h:] != 0, axis=-1))
    # Each speaker's part equals the same Bi-LSTM run on that speaker's turns gathered by hand.
    lstm = LSTM(h, bidirectional=True, num_layers=1)
    lstm_params = {"params": variables["params"]["speaker_context"]}
    u = np.asarray(aux["utterance"])
    for r in range(2):
        for s in (0, 1):
            turns = np.flatnonzero((batch["speaker"][r] == s) & batch["utt_mask"][r])
            alone = lstm.apply(lstm_params, u[r, turns][None], np.ones((1, len(turns)), bool))
            np.testing.assert_allclose(own[r, turns, 2 * h:], np.asarray(alone)[0], atol=1e-5)


def test_s002_speaker_context_config_errors():
    with pytest.raises(UsageError, match="model.max_speakers': max_speakers=0 must be >= 1"):
        build(make_cfg("s002", speaker_context=True, max_speakers=0))
    with pytest.raises(UsageError, match="divide the context width 64"):
        build(make_cfg("s002", speaker_context=True, num_heads=3))
