"""Dispatch: XLA reference by default off-GPU, Pallas under interpret=True; tuned table."""

import json

import jax
import jax.numpy as jnp
import pytest

from kernels import _common
from kernels import attention as att
from kernels import dynamic_conv as dc


def _has_pallas(fn, *args):
    return "pallas_call" in str(jax.make_jaxpr(fn)(*args))


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


def test_tuned_table_exact_match_else_defaults(tmp_path, monkeypatch):
    key = att.tuning_key((2, 40, 4, 64), 30, jnp.bfloat16, causal=False, has_bias=False)
    table = {"attention": {key: {"blocks": att.BlockSizes(32, 16, 16, 16).to_dict(), "ms": 1.0}}}
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(table))
    monkeypatch.setattr(_common, "TUNED_BLOCKS_PATH", str(path))
    got = att.pick_block_sizes((2, 40, 4, 64), 30, jnp.bfloat16, causal=False, has_bias=False)
    assert got == att.BlockSizes(32, 16, 16, 16)
    other = att.pick_block_sizes((2, 41, 4, 64), 30, jnp.bfloat16, causal=False, has_bias=False)
    assert other == att.BlockSizes.default(41, 30, 64, jnp.bfloat16)


def test_committed_table_is_valid_json():
    with open(_common.TUNED_BLOCKS_PATH) as f:
        table = json.load(f)
    for op, cls in (("attention", att.BlockSizes), ("dynamic_conv", dc.BlockSizes)):
        for entry in table.get(op, {}).values():
            cls(**entry["blocks"])  # every recorded entry must construct
