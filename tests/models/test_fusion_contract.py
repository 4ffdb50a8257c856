"""The fusion contract (issue 31): every registered fusion builds and steps in every system that
takes its kind; a fusion of the wrong kind is refused before a run writes anything; the modality
order comes from the config, so a features dict that crossed ``jax.jit`` (which sorts its keys)
gives the same output."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.errors import UsageError
from mmer_jax.models import build_model, model_config
from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.registry import FUSION_KINDS, FUSIONS, SYSTEMS

from .test_systems import TINY, VOCAB, C, init, key, make_batch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Tiny ``model`` sections of the systems that take a fusion; s003 reads its three streams in a
# non-sorted order, so an order taken from sorted names would show.
_QUICKSTART = dict(
    modalities=["frames", "audio"], head_hidden=8,
    encoders={"audio": {"name": "resnet2d", "depth": (1,), "width": 8},
              "frames": {"name": "cnn_lstm", "widths": (8,), "hidden": 8}})
SECTIONS = {
    "s001": TINY["s001"],
    "s003": {**TINY["s003"], "modalities": ["face", "audio", "frames"]},
    "quickstart": _QUICKSTART,
    "s002": {**TINY["s002"], "modalities": ["text"]},
}
TAKES_FUSION = sorted(n for n in SYSTEMS.names() if SYSTEMS[n].fusion_kind)
CASES = [(s, f) for s in TAKES_FUSION for f in FUSION_KINDS[SYSTEMS[s].fusion_kind].names()]
# Fast by default: each system with its cheapest fusion, and in the quickstart the fusions whose
# output depends on the modality order (tfn, mult) beside concat; every other pair compiles a
# whole model (10-30 s each on two CPU cores) and runs with -m slow. Every vector fusion is also
# built and applied on its own, fast, by the jit test below.
FAST = {("s001", "concat"), ("s003", "concat"), ("s002", "attention_residual"),
        ("quickstart", "concat"), ("quickstart", "tfn"), ("quickstart", "mult")}
PARAMS = [pytest.param(s, f, id=f"{s}-{f}", marks=() if (s, f) in FAST else pytest.mark.slow)
          for s, f in CASES]
WRONG = [(s, f) for s in TAKES_FUSION for kind, reg in FUSION_KINDS.items()
         if kind != SYSTEMS[s].fusion_kind for f in reg.names()]


def test_every_system_that_takes_a_fusion_is_covered():
    assert TAKES_FUSION == sorted(SECTIONS)
    assert {SYSTEMS[s].fusion_kind for s in TAKES_FUSION} == set(FUSION_KINDS)
    assert len(CASES) == 3 * len(FUSIONS.names()) + 1 and WRONG


def _batch(system: str) -> dict:
    batch = make_batch("s002" if system == "s002" else "s001", seed=0)
    return {k: jnp.asarray(v) for k, v in batch.items()}


@pytest.mark.parametrize("system, fusion", PARAMS)
def test_every_fusion_builds_and_steps_in_every_system_that_takes_it(system, fusion):
    model = build_model({"name": system, "dropout": 0.1, "fusion": fusion, **SECTIONS[system]},
                        num_classes=C, vocab_size=VOCAB)
    batch = _batch(system)
    variables = init(model, batch)  # jitted: eager init is several times slower
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}

    def loss(p):
        out, _ = model.apply({"params": p, **rest}, batch, train=True,
                             rngs={"dropout": key(2)}, mutable=list(rest))
        logits = out[0].reshape(-1, C)
        labels = batch["label"].reshape(-1)
        valid = batch["weight"].reshape(-1) > 0 if "weight" in batch else labels >= 0
        nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]
        return jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.maximum(valid.sum(), 1)

    step = jax.jit(jax.value_and_grad(loss))
    value, grads = step(params)
    assert np.isfinite(float(value))
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    # The step moves the parameters, and a fusion with parameters receives a gradient.
    # In numpy: eager jnp compiles a program per parameter shape (same for the sums below).
    stepped = jax.tree.map(lambda p, g: np.asarray(p) - 0.1 * np.asarray(g), params, grads)
    assert float(step(stepped)[0]) != float(value)
    scope = "attn_residual" if system == "s002" else "fusion"
    fusion_grads = jax.tree.leaves(grads.get(scope, {}))
    if fusion_grads:
        assert sum(float(np.abs(np.asarray(g)).sum()) for g in fusion_grads) > 0
    if system != "s002":
        assert model.order == tuple(
            (m if system == "quickstart" else f"feat_{m}")
            for m in (sorted(SECTIONS[system]["modalities"]) if system == "quickstart"
                      else SECTIONS[system]["modalities"]))


@pytest.mark.parametrize("system, fusion", WRONG, ids=[f"{s}-{f}" for s, f in WRONG])
def test_a_fusion_of_the_wrong_kind_is_refused_naming_both(system, fusion):
    with pytest.raises(UsageError, match=f"system '{system}' takes a "
                       f"{SYSTEMS[system].fusion_kind} fusion.*'{fusion}' is a"):
        model_config({"name": system, "fusion": fusion, **SECTIONS[system]})


@pytest.mark.parametrize("config, fusion", [
    ("s002_generated.py", "concat"),  # the example
    ("s001_generated.py", "attention_residual"),  # the other way round
])
def test_the_refusal_comes_before_config_json_exists(config, fusion, tmp_path, capsys):
    from mmer_jax.cli import main

    workdir = tmp_path / "run"
    code = main(["train", "--config", os.path.join(REPO, "experiments", config),
                 "--workdir", str(workdir), f"--config.model.fusion={fusion}"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"fusion='{fusion}'" in err and f"system '{config.split('_')[0]}'" in err
    assert len(err.strip().splitlines()) == 1
    assert not (workdir / "config.json").exists()


def test_an_unknown_fusion_lists_every_kind():
    with pytest.raises(UsageError, match="unknown fusion 'nosuch' for system 's001'.*vector: "
                       ".*concat.*sequence: attention_residual"):
        model_config({"name": "s001", "fusion": "nosuch"})


# --------------------------------------------------------------------- order through jax.jit

def _feats(order, seed=0):
    rng = np.random.default_rng(seed)
    dims = {"text": 3, "audio": 4, "frames": 2}
    return {m: jnp.asarray(rng.normal(size=(5, dims[m])), jnp.float32) for m in order}


@pytest.mark.parametrize("name", FUSIONS.names())
def test_output_is_the_same_when_the_features_dict_crossed_jit(name):
    """TFN's product and MulT's output blocks follow the modality order: with it read from the
    dict, a dict that crossed ``jax.jit`` (keys re-sorted) changed TFN's output. The order is
    the model's own now, so it cannot."""
    order = ("text", "audio", "frames")  # not sorted
    feats = _feats(order)
    crossed = jax.jit(lambda d: d)(feats)
    assert list(crossed) == sorted(order) != list(order)  # what jit does to a dict
    model = FUSIONS[name](order=order)
    # An rbg key: the eager init's random programs compile several times faster than threefry's
    # (the applies stay eager: the dict's order is what is tested).
    params = model.init(key(0), feats, train=False)
    direct = np.asarray(model.apply(params, feats, train=False))
    np.testing.assert_array_equal(np.asarray(model.apply(params, crossed, train=False)), direct)
    inside = jax.jit(lambda p, d: model.apply(p, d, train=False))(params, feats)
    np.testing.assert_allclose(np.asarray(inside), direct, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["tfn", "mult"])
def test_the_order_changes_tfn_and_mult_so_the_check_above_can_fail(name):
    feats = _feats(("text", "audio", "frames"))
    given = FUSIONS[name](order=("text", "audio", "frames"))
    params = given.init(key(0), feats, train=False)
    other = FUSIONS[name](order=("audio", "frames", "text"))  # the sorted order jit gives
    a = np.asarray(given.apply(params, feats, train=False))
    b = np.asarray(other.apply(params, feats, train=False))  # same parameters, other order
    assert a.shape == b.shape and not np.allclose(a, b, rtol=1e-2, atol=1e-3)


def test_an_order_that_does_not_match_the_features_is_named():
    feats = _feats(("text", "audio"))
    with pytest.raises(ValueError, match="no feature for 'frames'"):
        fusion_order(feats, ("text", "audio", "frames"), "tfn")
    with pytest.raises(ValueError, match="feature 'audio' is not in it"):
        fusion_order(feats, ("text",), "concat")
    with pytest.raises(ValueError, match="repeats"):
        fusion_order(feats, ("text", "text"), "late")
    assert fusion_order(feats, (), "late") == ["audio", "text"]
