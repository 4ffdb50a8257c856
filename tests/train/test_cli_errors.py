"""Bad input through the real `mmer` command: one line on stderr, exit code != 0, no traceback,
no results.json."""

import os
import subprocess
import sys

import pytest

from mmer_jax import cli

QS = "experiments/quickstart.py"


def _mmer(*args, cwd=None):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    env.pop("MMER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "mmer_jax.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def _one_line_error(proc, *words):
    err = proc.stderr.strip().splitlines()
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert err and err[-1].startswith("mmer: error:"), proc.stderr
    for w in words:
        assert w in err[-1], err[-1]


def test_unknown_key_and_wrong_type(tmp_path):
    p = _mmer("train", "--config", QS, "--workdir", str(tmp_path / "w"), "--config.train.lrr=1")
    _one_line_error(p, "unknown config key 'train.lrr'")
    assert p.returncode == 2
    p = _mmer("train", "--config", QS, "--workdir", str(tmp_path / "w"), "--config.train.lr=fast")
    _one_line_error(p, "train.lr", "expects float")
    assert p.returncode == 2
    assert not (tmp_path / "w" / "results.json").exists()


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    # A path under a regular file cannot be created, even by root (which ignores chmod).
    p = _mmer(
        "train", "--config", QS, "--workdir", str(blocker / "run"), "--config.data.config=tiny"
    )
    _one_line_error(p, "--workdir", "not writable")
    assert p.returncode == 2


def test_empty_split_is_a_clear_error(tmp_path, monkeypatch, capsys, tiny_generated):
    from data_prep import build as build_lib

    real = build_lib.build

    class EmptyValidation:
        """Wraps the real builder but serves an empty validation split."""

        def __init__(self, inner):
            self._inner = inner
            self.info = inner.info

        def as_data_source(self, split):
            src = self._inner.as_data_source(split=split)
            return [] if split == "validation" else src

    monkeypatch.setattr(build_lib, "build", lambda *a, **k: EmptyValidation(real(*a, **k)))
    code = cli.main(
        [
            "train",
            "--config",
            QS,
            "--workdir",
            str(tmp_path / "w"),
            "--config.data.config=tiny",
            f"--config.data.data_dir={tiny_generated}",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("mmer: error:") and "'validation'" in err[-1] and "empty" in err[-1]
    assert not (tmp_path / "w" / "results.json").exists()


@pytest.mark.parametrize("lr", ["1e30"])
def test_nan_loss_stops_the_run(tmp_path, capsys, tiny_generated, lr):
    code = cli.main(
        [
            "train",
            "--config",
            QS,
            "--workdir",
            str(tmp_path / "w"),
            "--config.data.config=tiny",
            f"--config.data.data_dir={tiny_generated}",
            f"--config.train.lr={lr}",
            "--config.train.grad_clip=0",
            "--config.train.log_every=1",
            "--config.train.progress=false",
            "--config.train.schedule=constant",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert "loss became" in err[-1] and "train.lr" in err[-1], err[-1]
    assert not (tmp_path / "w" / "results.json").exists()


def test_bench_flags_reach_the_right_benchmark(tmp_path):
    p = _mmer("bench", "kernels", "--config", QS)
    _one_line_error(p, "--config is not an option of `mmer bench kernels`")
    p = _mmer("bench", "train", "--config", QS, "--compare", "model.dropout=0.1",
              "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "o.json"))
    _one_line_error(p, "expected KEY=V1,V2")
