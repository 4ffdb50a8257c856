"""SIGKILL in the middle of `mmer train`, then the same command: same final parameters as an
uninterrupted run. Slow (three processes, each compiling), so behind the `slow` marker; the fast
suite covers the same property in-process with train.stop_after_steps."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from mmer_jax.train.checkpoint import Checkpoints

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = """
import ml_collections
from experiments.quickstart import get_config as base

def get_config():
    cfg = base()
    cfg.variants = ml_collections.ConfigDict({"fused": ["audio", "frames", "text"]})
    return cfg
"""


def _cmd(config, workdir, data_dir):
    return [
        sys.executable,
        "-m",
        "mmer_jax.cli",
        "train",
        "--config",
        config,
        "--workdir",
        workdir,
        "--config.data.config=tiny",
        f"--config.data.data_dir={data_dir}",
        "--config.train.epochs=2",
        "--config.train.batch_size=16",
        "--config.train.checkpoint_every_steps=1",
        "--config.train.progress=false",
    ]


def _params(workdir):
    ckpt = Checkpoints(os.path.join(workdir, "variants", "fused"))
    state, _ = ckpt.restore("latest", None)
    step = ckpt.latest_step()
    ckpt.close()
    return step, state["params"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_to_the_same_parameters(tmp_path, tiny_generated, sig):
    config = tmp_path / "fused_only.py"
    config.write_text(CONFIG)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    subprocess.run(
        _cmd(str(config), full, tiny_generated),
        check=True,
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=900,
    )

    proc = subprocess.Popen(
        _cmd(str(config), part, tiny_generated),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latest = os.path.join(part, "variants", "fused", "ckpt", "latest")
    deadline = time.time() + 600
    while time.time() < deadline:  # wait for step 2 to be committed, then kill mid-training
        if os.path.isdir(latest) and any(d.isdigit() and int(d) >= 2 for d in os.listdir(latest)):
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    code = proc.wait(timeout=120)
    assert code != 0
    assert not os.path.exists(os.path.join(part, "results.json"))

    subprocess.run(
        _cmd(str(config), part, tiny_generated),
        check=True,
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=900,
    )
    s_full, p_full = _params(full)
    s_part, p_part = _params(part)
    assert s_full == s_part
    for a, b in zip(jax.tree.leaves(p_full), jax.tree.leaves(p_part), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
