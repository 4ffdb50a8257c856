"""Issue 11: the run options of training at scale -- ``train.profile_steps`` writes a trace that
TensorBoard and Perfetto open, ``train.deterministic`` puts XLA's deterministic-ops flags into
XLA_FLAGS before the backend starts (or refuses, naming the key), and the new keys are shown by
``--print-config`` and checked like every other key."""

import contextlib
import glob
import gzip
import io
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest

from mmer_jax import cli
from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.errors import UsageError
from mmer_jax.train import determinism
from mmer_jax.train.loop import VariantTrainer
from mmer_jax.train.profiling import ProfileSteps

from .helpers import QUICKSTART, only_variant, tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _trace(log_dir: str) -> tuple[list[str], list[dict]]:
    """(the trace files under ``log_dir``, the Perfetto trace's events)."""
    files = sorted(glob.glob(os.path.join(log_dir, "plugins", "profile", "*", "*")))
    perfetto = [f for f in files if f.endswith("perfetto_trace.json.gz")]
    assert len(perfetto) == 1, files
    with gzip.open(perfetto[0]) as f:
        return files, json.load(f)["traceEvents"]


@pytest.mark.slow  # 8 s; a whole run with the profiler on
def test_profile_steps_traces_exactly_the_window(tmp_path, tiny_generated):
    # 64 train examples / batch 16 = 4 steps; "1:3" traces steps 2 and 3
    cfg = only_variant(tiny_config(tiny_generated, **{"train.profile_steps": "1:3"}), "text",
                       ["text"])
    pipe = make_pipeline(cfg.data, ["text"], cfg.seed, str(tmp_path))
    trainer = VariantTrainer(cfg, pipe, "text", ["text"], str(tmp_path))
    hooks = trainer.step_hooks({}, start_step=0)
    assert [type(h) for h in hooks] == [ProfileSteps] and not hooks[0].active
    trainer.train_epoch(trainer.init_state(), 0, hooks=hooks)
    assert not hooks[0].active  # stopped after step 3
    files, events = _trace(str(tmp_path / "profile" / "text"))
    assert any(f.endswith(".xplane.pb") for f in files)  # TensorBoard's profile plugin
    steps = sorted(int(e["args"]["step_num"]) for e in events if e.get("name") == "train")
    assert steps == [2, 3]
    assert any(e.get("ph") == "X" and "fusion" in e.get("name", "") for e in events)  # XLA ops


def test_a_run_resumed_inside_the_window_traces_at_once(tmp_path):
    hook = ProfileSteps("1:3", str(tmp_path), current_step=2)
    assert hook.active
    jnp.ones(3).sum().block_until_ready()
    hook(3, jnp.zeros(()))
    assert not hook.active
    _trace(str(tmp_path))
    assert not ProfileSteps("1:3", str(tmp_path / "later"), current_step=3).active


def test_deterministic_flags_reach_xla_flags_before_the_backend_starts(tmp_path, tiny_generated):
    """Through ``mmer train`` in a fresh process (the trainer stubbed out once the run has
    started the backend): the flags are in XLA_FLAGS and XLA accepted them (an unknown flag in
    XLA_FLAGS aborts the process)."""
    script = textwrap.dedent(f"""
        import json, os, sys
        import jax
        from jax._src import xla_bridge
        from mmer_jax import cli
        from mmer_jax.train import loop

        class Stub:
            def __init__(self, *args, **kwargs):
                assert xla_bridge.backends_are_initialized()
                print("RESULT", json.dumps({{"flags": os.environ["XLA_FLAGS"],
                                             "devices": jax.device_count()}}))
                sys.stdout.flush()
                os._exit(0)

        assert not xla_bridge.backends_are_initialized()
        loop.VariantTrainer = Stub
        sys.exit(cli.main(["train", "--config", {QUICKSTART!r}, "--workdir", {str(tmp_path)!r},
                           "--data_dir", {tiny_generated!r}, "--config.data.config=tiny",
                           "--config.train.deterministic=True", "--config.train.progress=False"]))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu", "MMER_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=240)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT "):])
    assert result["flags"].split() == ["--xla_force_host_platform_device_count=2",
                                       *determinism.DETERMINISTIC_FLAGS]
    assert result["devices"] == 2  # the flags already there were kept


def test_deterministic_after_the_backend_started_is_refused_by_name(tmp_path, tiny_generated):
    if not determinism.missing_flags(os.environ.get("XLA_FLAGS", "")):
        pytest.skip("this test process already runs with the deterministic flags")
    jax.devices()  # this process's backend has started
    before = os.environ.get("XLA_FLAGS")
    cfg = only_variant(tiny_config(tiny_generated, **{"train.deterministic": True}), "text",
                       ["text"])
    from mmer_jax.train.run import run

    with pytest.raises(UsageError, match="config key 'train.deterministic'") as err:
        run(cfg, str(tmp_path / "run"))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()  # refused before anything was written
    assert os.environ.get("XLA_FLAGS") == before


def test_enable_deterministic_ops_replaces_other_values_and_keeps_other_flags():
    env = {"XLA_FLAGS": "--xla_gpu_autotune_level=4 --xla_force_host_platform_device_count=2"}
    added = determinism.enable_deterministic_ops(env)
    assert added == list(determinism.DETERMINISTIC_FLAGS)
    assert env["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=2",
                                        *determinism.DETERMINISTIC_FLAGS]
    assert determinism.enable_deterministic_ops(env) == []  # already there: nothing to do


def test_print_config_shows_the_new_keys():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["train", "--config", QUICKSTART, "--print-config",
                         "--config.train.grad_accum_steps=2", "--config.train.fsdp=2",
                         "--config.train.profile_steps=10:15"]) == 0
    train = json.loads(out.getvalue())["train"]
    assert train["grad_accum_steps"] == 2 and train["fsdp"] == 2
    assert train["profile_steps"] == "10:15"
    assert train["fsdp_min_size"] == 65536 and train["deterministic"] is False


@pytest.mark.parametrize("override, key", [
    ("train.grad_accum_steps=0", "train.grad_accum_steps"),
    ("train.fsdp=0", "train.fsdp"),
    ("train.fsdp_min_size=-1", "train.fsdp_min_size"),
    ("train.profile_steps=5:3", "train.profile_steps"),
    ("train.profile_steps=10-15", "train.profile_steps"),
    ("train.deterministic=maybe", "train.deterministic"),
])
def test_bad_values_are_one_line_naming_the_key(override, key, capsys):
    assert cli.main(["train", "--config", QUICKSTART, "--print-config",
                     f"--config.{override}"]) != 0
    err = capsys.readouterr().err.strip()
    assert f"config key '{key}'" in err and "\n" not in err, err


@pytest.mark.parametrize("override, key", [("train.grad_accum_steps=3", "train.grad_accum_steps"),
                                           ("train.fsdp=3", "train.fsdp")])
def test_a_batch_the_mesh_cannot_split_fails_before_anything_is_written(
        tmp_path, tiny_generated, override, key):
    """Checked with the models, before config.json: the corrected command then starts afresh in
    the same --workdir instead of meeting 'a run of a different config'."""
    from mmer_jax.train.run import run

    cfg = tiny_config(tiny_generated, **dict([override.split("=")]))
    workdir = tmp_path / "run"
    with pytest.raises(UsageError, match=key.replace(".", r"\.")):
        run(cfg, str(workdir))
    assert not workdir.exists()
