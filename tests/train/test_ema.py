"""Weight EMA (``train.ema_decay``): the average's value, that selection, test and prediction
use it, and that an interrupted run resumes to the same average."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.errors import UsageError
from mmer_jax.schema import TrainConfig, from_section
from mmer_jax.train.checkpoint import Checkpoints
from mmer_jax.train.evaluate import evaluate_run
from mmer_jax.train.loop import Interrupted
from mmer_jax.train.run import run
from mmer_jax.train.state import ema_update

from .helpers import only_variant, tiny_config


def test_ema_update_is_the_ramped_average():
    ema, params = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 6.0])}
    d0 = min(0.99, 1.0 / 10.0)  # step 0: the ramp, not 0.99
    out = ema_update(ema, params, jnp.int32(0), 0.99)
    np.testing.assert_allclose(out["w"], d0 * np.array([1.0, 2.0]) + (1 - d0) * np.array([3, 6.0]),
                               rtol=1e-6)
    late = ema_update(ema, params, jnp.int32(10_000), 0.99)  # the ramp has passed 0.99
    np.testing.assert_allclose(late["w"], [1.02, 2.04], rtol=1e-6)


def test_bad_decay_names_the_key():
    with pytest.raises(UsageError, match="ema_decay"):
        from_section(TrainConfig, {"ema_decay": 1.0}, "train")


def _latest(workdir):
    ckpt = Checkpoints(os.path.join(workdir, "variants", "audio"))
    state, _ = ckpt.restore("latest", None)
    ckpt.close()
    return state


def _cfg(data_dir, **extra):
    return only_variant(tiny_config(data_dir, **{"train.ema_decay": 0.9, **extra}), "audio",
                        ["audio"])


@pytest.mark.slow  # 11 s; a whole run with EMA; the average itself stays fast
def test_runs_select_and_test_with_the_average(tiny_generated, tmp_path):
    full = str(tmp_path / "full")
    results = run(_cfg(tiny_generated), full)
    state = _latest(full)
    diffs = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(state["ema_params"]),
                                                 jax.tree.leaves(state["params"]), strict=True)]
    assert max(diffs) > 1e-6  # a real average, not a copy of the weights
    # `mmer eval` (the best checkpoint, its average) finds the test numbers the run reported.
    again = evaluate_run(full, "test")
    assert again["audio"]["test"]["confusion"] == results["test"]["confusion"]


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_average(tiny_generated, tmp_path):
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    run(_cfg(tiny_generated), full)
    with pytest.raises(Interrupted):
        run(_cfg(tiny_generated, **{"train.stop_after_steps": 3}), part)
    run(_cfg(tiny_generated), part)
    state, resumed = _latest(full), _latest(part)
    for a, b in zip(jax.tree.leaves(state["ema_params"]), jax.tree.leaves(resumed["ema_params"]),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
