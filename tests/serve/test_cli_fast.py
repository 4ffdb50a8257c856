"""Issue 33: `mmer predict` checks its arguments and files before importing jax (it answered a
missing file after 6-19 s), and `mmer serve` binds its port before compiling (a busy port failed
after 30 s of compilation and a "ready" line). Fresh interpreters, no model: seconds."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

# Runs `mmer ARGS` in a fresh interpreter; prints its exit code and whether jax got imported.
_PROBE = """
import sys
from mmer_jax import cli
rc = cli.main(sys.argv[1:])
print("RC", rc, "JAX", "jax" in sys.modules, "TF", "tensorflow" in sys.modules)
"""


def _mmer(*args: str) -> tuple[str, str, float]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True,
                       timeout=120)
    return p.stdout, p.stderr, time.perf_counter() - t0


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A directory that looks like a run to the cheap checks (config.json), plus a real wav."""
    import numpy as np

    from .media import write_wav

    d = tmp_path_factory.mktemp("fake_run")
    (d / "config.json").write_text("{}")
    wav = write_wav(d / "clip.wav", (np.ones(16000) * 1000).astype(np.int16))
    return str(d), wav


@pytest.mark.parametrize("args,msg", [
    (["missing.wav"], "missing.wav: no such file"),
    (["notes.xyz"], "unsupported file type '.xyz'"),
    (["{wav}", "--window", "inf"], "--window must be a finite number"),
    (["{wav}", "--window", "2", "--hop", "nan"], "--hop must be a finite number"),
    (["{wav}", "--hop", "1"], "--hop needs --window"),
])
def test_predict_refuses_before_importing_jax(fake_run, args, msg):
    run, wav = fake_run
    out, err, took = _mmer("predict", "--workdir", run, *[a.format(wav=wav) for a in args])
    assert "RC 2 JAX False TF False" in out, (out, err)
    assert msg in err


def test_predict_on_a_missing_run_refuses_before_importing_jax(fake_run, tmp_path):
    _, wav = fake_run
    out, err, _ = _mmer("predict", "--workdir", str(tmp_path / "nope"), wav)
    assert "RC 2 JAX False" in out and "holds no run (config.json missing)" in err


def test_serve_on_a_busy_port_fails_before_compiling(fake_run):
    run, _ = fake_run
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out, err, took = _mmer("serve", "--workdir", run, "--port", str(port))
    assert "RC 2 JAX False" in out, (out, err)
    # One line, nothing compiled, no "ready" printed first.
    assert err.startswith(f"mmer: error: cannot listen on 127.0.0.1:{port}: ") and "--port" in err
    assert err.count("\n") == 1, err
