"""What every `mmer` command pays before its work (issue 30, item 5): JAX's persistent compilation
cache is on by default under $MMER_CACHE (opt-out MMER_COMPILATION_CACHE=0), and TensorBoard's
writer comes without torch. Subprocesses, so this session's jax and modules stay untouched; the
real ~/.cache is never written ($MMER_CACHE points into tmp_path)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from mmer_jax import cli

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    env.pop(cli.CACHE_OPT_OUT, None)
    return {**env, "MMER_CACHE": str(tmp_path / "cache"), **extra}


COMPILE = ("from mmer_jax import cli; cli.configure_compilation_cache()\n"
           "import json, jax, jax.numpy as jnp\n"
           "jax.jit(lambda x: x * 3 + 1)(jnp.arange(5.0)).block_until_ready()\n"
           "print(json.dumps(jax.config.jax_compilation_cache_dir))")


def test_the_cli_caches_compiled_programs_under_mmer_cache(tmp_path):
    where = tmp_path / "cache" / "jax"
    assert json.loads(_python(COMPILE, _env(tmp_path))) == str(where)
    assert any(p.name.endswith("-cache") for p in where.iterdir())  # a program was written


def test_opt_out_and_an_explicit_jax_cache_dir(tmp_path):
    off = _env(tmp_path, MMER_COMPILATION_CACHE="0")
    assert json.loads(_python(COMPILE, off)) is None
    assert not (tmp_path / "cache").exists()
    own = _env(tmp_path, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "mine"))
    assert json.loads(_python(COMPILE, own)) == str(tmp_path / "mine")  # the user's, kept
    assert not (tmp_path / "cache").exists()


def test_configure_compilation_cache_in_words(tmp_path, monkeypatch):
    """The environment it leaves (a dict here: this session's own cache stays as it is)."""
    monkeypatch.setenv("MMER_CACHE", str(tmp_path))
    env: dict = {}
    assert cli.configure_compilation_cache(env) == str(tmp_path / "jax")
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    for value in ("0", "off", "false"):
        assert cli.configure_compilation_cache({cli.CACHE_OPT_OUT: value}) is None


def test_tensorboard_events_are_written_without_importing_torch(tmp_path):
    code = ("import sys\n"
            "from mmer_jax.train.progress import MetricsLog\n"
            f"log = MetricsLog({str(tmp_path / 'metrics.jsonl')!r}, 'audio')\n"
            "log.append('train', 1, 1, loss=0.5); log.close()\n"
            "loaded = 'torch' in sys.modules\n"
            "import importlib.util\n"
            "if importlib.util.find_spec('torch'): import torch  # still importable afterwards\n"
            "print(loaded)")
    assert _python(code, _env(tmp_path)) == "False"
    events = list((tmp_path / "tensorboard" / "audio").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
