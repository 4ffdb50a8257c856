"""Dispatch: XLA reference by default off-GPU, Pallas under interpret=True; the tuned-blocks table.

The committed table (mmer_kernels/tuned_blocks.json) is empty until someone tunes on a GPU, so the
lookup is tested on tables these tests write themselves (with ``autotune.record``, the writer the
autotuner uses) and point ``_common.TUNED_BLOCKS_PATH`` at.
"""

import importlib
import json
import os

import jax
import jax.numpy as jnp
import pytest

from mmer_kernels import _common, autotune

att = importlib.import_module("mmer_kernels.attention")  # the module, not the op
dc = importlib.import_module("mmer_kernels.dynamic_conv")

Q_SHAPE, LK = (2, 40, 4, 64), 30
X_SHAPE, HEADS, TAPS = (2, 50, 64), 4, 7


def _has_pallas(fn, *args):
    return "pallas_call" in str(jax.make_jaxpr(fn)(*args))


@pytest.fixture
def table(tmp_path, monkeypatch):
    """A fresh table file that the dispatch reads instead of mmer_kernels/tuned_blocks.json."""
    path = tmp_path / "tuned.json"
    monkeypatch.setattr(_common, "TUNED_BLOCKS_PATH", str(path))
    return path


def _att_key(q_shape=Q_SHAPE, causal=False):
    return att.tuning_key(q_shape, LK, jnp.bfloat16, causal=causal, has_bias=False)


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the non-GPU default")
def test_default_is_xla_reference_off_gpu_and_interpret_runs_pallas():
    q = jnp.ones((1, 5, 1, 32))
    assert not _has_pallas(lambda q: att.attention(q, q, q), q)
    assert _has_pallas(lambda q: att.attention(q, q, q, interpret=True), q)
    x, w = jnp.ones((1, 5, 8)), jnp.zeros((1, 5, 2, 3))
    assert not _has_pallas(lambda x, w: dc.dynamic_conv(x, w), x, w)
    assert _has_pallas(lambda x, w: dc.dynamic_conv(x, w, interpret=True), x, w)
    with pytest.raises(ValueError, match="needs a GPU"):
        att.attention(q, q, q, implementation="pallas")
    with pytest.raises(ValueError, match="contradicts"):
        dc.dynamic_conv(x, w, implementation="xla", interpret=True)
    with pytest.raises(ValueError, match="must be one of"):
        att.attention(q, q, q, implementation="triton")


def test_recorded_entries_are_found_by_exact_key_for_both_ops(table):
    tuned_att = att.BlockSizes(32, 16, 16, 16, 32, 16, num_warps=8)
    tuned_dc = dc.BlockSizes(32, num_warps=2, num_stages=3)
    dc_key = dc.tuning_key(X_SHAPE, HEADS, TAPS, jnp.float32, padding="causal")
    autotune.record("attention", _att_key(), tuned_att, 1.25, str(table))
    autotune.record("dynamic_conv", dc_key, tuned_dc, 0.5, str(table))
    written = json.loads(table.read_text())
    assert written["attention"][_att_key()]["blocks"] == tuned_att.to_dict()
    assert autotune.check_table(written) == 2

    got = att.pick_block_sizes(Q_SHAPE, LK, jnp.bfloat16, causal=False, has_bias=False)
    assert got == tuned_att != att.BlockSizes.default(Q_SHAPE[1], LK, Q_SHAPE[3], jnp.bfloat16)
    got = dc.pick_block_sizes(X_SHAPE, HEADS, TAPS, jnp.float32, padding="causal")
    assert got == tuned_dc != dc.BlockSizes.default(X_SHAPE[1], X_SHAPE[2] // HEADS)
    # A length in the same bucket (41 -> 64 like 40) hits the entry.
    assert att.pick_block_sizes((2, 41, 4, 64), LK, jnp.bfloat16, causal=False,
                                has_bias=False) == tuned_att
    assert dc.pick_block_sizes((3, 60, 64), HEADS, TAPS, jnp.float32, padding="causal") == tuned_dc
    # Any difference in the bucket, the flags, the dtype or the padding falls back.
    misses = [
        att.pick_block_sizes((2, 70, 4, 64), LK, jnp.bfloat16, causal=False, has_bias=False),
        att.pick_block_sizes(Q_SHAPE, LK, jnp.bfloat16, causal=True, has_bias=False),
        att.pick_block_sizes(Q_SHAPE, LK, jnp.float32, causal=False, has_bias=False),
    ]
    assert misses == [att.BlockSizes.default(70, LK, 64, jnp.bfloat16),
                      att.BlockSizes.default(40, LK, 64, jnp.bfloat16),
                      att.BlockSizes.default(40, LK, 64, jnp.float32)]
    assert dc.pick_block_sizes(X_SHAPE, HEADS, TAPS, jnp.float32, padding="centered") == \
        dc.BlockSizes.default(X_SHAPE[1], X_SHAPE[2] // HEADS)


def test_dispatch_passes_the_tuned_blocks_to_the_kernel(table, monkeypatch):
    tuned = att.BlockSizes(16, 32, 16, 16, 16, 16)
    q = jnp.zeros((1, 20, 2, 32))
    key = att.tuning_key(q.shape, 20, q.dtype, causal=True, has_bias=False)
    autotune.record("attention", key, tuned, 1.0, str(table))
    seen = {}

    def spy(*args, block_sizes, **kw):
        seen["blocks"] = block_sizes
        return args[0]

    monkeypatch.setattr(att, "_attention_pallas", spy)
    att.attention(q, q, q, causal=True, interpret=True)
    assert seen["blocks"] == tuned
    att.attention(q, q, q, causal=False, interpret=True)  # no entry: the per-shape defaults
    assert seen["blocks"] == att.BlockSizes.default(20, 20, 32, q.dtype)


def test_an_edited_table_is_read_again(table):
    first, second = att.BlockSizes(16, 16, 16, 16), att.BlockSizes(64, 64, 32, 32, 64, 64)
    pick = lambda: att.pick_block_sizes(Q_SHAPE, LK, jnp.bfloat16, causal=False, has_bias=False)
    autotune.record("attention", _att_key(), first, 1.0, str(table))
    assert pick() == first
    autotune.record("attention", _att_key(), second, 0.9, str(table))
    mtime = os.path.getmtime(table)
    os.utime(table, (mtime + 5, mtime + 5))  # a coarse clock could leave the mtime unchanged
    assert pick() == second


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"attention": [1]}'])
def test_a_broken_table_means_defaults_not_errors(table, content):
    table.write_text(content)
    got = att.pick_block_sizes(Q_SHAPE, LK, jnp.bfloat16, causal=False, has_bias=False)
    assert got == att.BlockSizes.default(Q_SHAPE[1], LK, Q_SHAPE[3], jnp.bfloat16)


def test_check_table_names_the_bad_entry():
    good = {"blocks": att.BlockSizes().to_dict(), "ms": 1.0}
    assert autotune.check_table({"attention": {"k1": good}, "dynamic_conv": {}}) == 1
    with pytest.raises(ValueError, match=r"attention\['k2'\]: block_q=24"):
        autotune.check_table({"attention": {"k1": good, "k2": {"blocks": {"block_q": 24}}}})
    with pytest.raises(ValueError, match=r"dynamic_conv\['k'\].*block_q"):
        autotune.check_table({"dynamic_conv": {"k": good}})  # attention fields
    with pytest.raises(ValueError, match="'blocks' dict"):
        autotune.check_table({"attention": {"k": {"ms": 1.0}}})
    with pytest.raises(ValueError, match="maps ops"):
        autotune.check_table({"matmul": {}})


def test_committed_table_is_well_formed():
    with open(_common.TUNED_BLOCKS_PATH) as f:
        table = json.load(f)
    assert set(table) == set(autotune.BLOCK_SIZES)
    autotune.check_table(table)  # every recorded entry builds its BlockSizes


# ------------------------------------------------------------ implementation="auto"
def _record_times(table, op, key, times):
    blocks = att.BlockSizes() if op == "attention" else dc.BlockSizes()
    autotune.record(op, key, blocks, min(times.values()), str(table), times=times)


def test_auto_picks_the_fastest_eligible_recorded_implementation(table):
    key, pick = _att_key(), _common.pick_implementation
    every = ("pallas", "xla", "cudnn")
    assert pick("attention", key, every, on_gpu=True) == "pallas"  # no entry: the default
    assert pick("attention", key, every, on_gpu=False) == "xla"  # never the interpreter
    _record_times(table, "attention", key, {"pallas": 2.0, "cudnn": 1.5, "xla": 3.0})
    written = json.loads(table.read_text())["attention"][key]
    assert written["implementation"] == "cudnn" and autotune.check_table(
        json.loads(table.read_text())) == 1
    assert pick("attention", key, every, on_gpu=True) == "cudnn"
    # cuDNN cannot run this call (e.g. float32, a bias, masks): the next fastest.
    assert pick("attention", key, ("pallas", "xla"), on_gpu=True) == "pallas"
    assert pick("attention", key, every, on_gpu=False) == "xla"
    _record_times(table, "attention", key, {"pallas": 4.0, "xla": 3.0})
    os.utime(table, (os.path.getmtime(table) + 5,) * 2)
    assert pick("attention", key, every, on_gpu=True) == "xla"
    # Another bucket has no entry.
    other = att.tuning_key((2, 300, 4, 64), LK, jnp.bfloat16, causal=False, has_bias=False)
    assert pick("attention", other, every, on_gpu=True) == "pallas"


def test_a_winner_without_times_and_a_bad_implementation(table):
    key = _att_key()
    table.write_text(json.dumps({"attention": {key: {"blocks": {}, "implementation": "xla"}}}))
    assert _common.pick_implementation("attention", key, ("pallas", "xla"), on_gpu=True) == "xla"
    with pytest.raises(ValueError, match="implementation='triton'"):
        autotune.check_table({"attention": {key: {"blocks": {}, "implementation": "triton"}}})


def test_auto_dispatch_runs_what_the_table_says(table, monkeypatch):
    """On a (simulated) GPU the op looks its shape bucket up and runs the recorded winner."""
    q = jnp.ones((2, 40, 4, 64), jnp.bfloat16)
    x, w = jnp.ones((2, 50, 64)), jnp.zeros((2, 50, 4, 7))
    gpu_pick = lambda *a, **kw: _common.pick_implementation(*a, **kw, on_gpu=True)  # noqa: E731
    monkeypatch.setattr(att, "pick_implementation", gpu_pick)
    monkeypatch.setattr(dc, "pick_implementation", gpu_pick)
    key = att.tuning_key(q.shape, 40, q.dtype, causal=False, has_bias=False)
    dc_key = dc.tuning_key(x.shape, 4, 7, x.dtype, padding="centered")
    _record_times(table, "attention", key, {"pallas": 2.0, "xla": 1.0})
    _record_times(table, "dynamic_conv", dc_key, {"pallas": 2.0, "xla": 1.0})
    assert not _has_pallas(lambda q: att.attention(q, q, q, implementation="auto"), q)
    assert not _has_pallas(lambda x, w: dc.dynamic_conv(x, w, implementation="auto"), x, w)
    _record_times(table, "attention", key, {"pallas": 0.5, "xla": 1.0})
    _record_times(table, "dynamic_conv", dc_key, {"pallas": 0.5, "xla": 1.0})
    os.utime(table, (os.path.getmtime(table) + 5,) * 2)
    # The table now says Pallas; this CPU has no GPU, so the kernel path refuses to run.
    with pytest.raises(ValueError, match="needs a GPU"):
        att.attention(q, q, q)
    with pytest.raises(ValueError, match="needs a GPU"):
        dc.dynamic_conv(x, w)


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the non-GPU refusals")
def test_cudnn_is_refused_off_gpu_and_named_in_the_errors():
    q = jnp.ones((1, 8, 1, 64), jnp.bfloat16)
    with pytest.raises(ValueError, match="implementation='cudnn': cuDNN needs a GPU"):
        att.attention(q, q, q, implementation="cudnn")
    with pytest.raises(ValueError, match="contradicts implementation='cudnn'"):
        att.attention(q, q, q, implementation="cudnn", interpret=True)
    with pytest.raises(ValueError, match="must be one of"):
        att.attention(q, q, q, implementation="flash")


@pytest.mark.gpu
@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN needs a GPU")
def test_cudnn_path_matches_the_reference_on_gpu():
    ks = jax.random.split(jax.random.PRNGKey(0), 3)
    q, k, v = (jax.random.normal(kk, (2, 100, 4, 64), jnp.bfloat16) for kk in ks)
    ql, kl = jnp.array([100, 37]), jnp.array([80, 0])
    got = att.attention(q, k, v, q_lengths=ql, kv_lengths=kl, implementation="cudnn")
    ref = att.attention(q, k, v, q_lengths=ql, kv_lengths=kl, implementation="xla")
    np_got, np_ref = (jnp.asarray(a, jnp.float32) for a in (got, ref))
    assert float(jnp.max(jnp.abs(np_got - np_ref))) < 2e-2
