"""Fault 5 of issue 11 on loopback: 2 processes (gloo CPU collectives, 2 forced devices each)
train the same epoch as 1 process with 4 devices and end with the same parameters and loss;
validation counts every example once (the confusion matrix sums to the split size); only
process 0 writes ``metrics.jsonl``."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out, data_dir, run_dir, n_proc, devices_each):
    port = _free_port()
    procs = []
    for i in range(n_proc):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MMER_")}
        env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_each}",
                   JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
        if n_proc > 1:
            env.update(MMER_COORDINATOR=f"127.0.0.1:{port}", MMER_NUM_PROCESSES=str(n_proc),
                       MMER_PROCESS_ID=str(i))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.train.multihost_worker", str(out), data_dir,
             str(run_dir)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    logs = [p.communicate(timeout=900)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)[-4000:]


@pytest.mark.slow  # three processes, each compiling
def test_two_processes_match_one(tmp_path, tiny_generated):
    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        d.mkdir()
    _launch(one, tiny_generated, one / "run", 1, 4)
    _launch(two, tiny_generated, two / "run", 2, 2)
    ref = np.load(one / "proc0.npz")
    assert int(ref["devices"]) == 4 and int(ref["hosts"]) == 1
    for i in range(2):
        got = np.load(two / f"proc{i}.npz")
        assert int(got["devices"]) == 4 and int(got["hosts"]) == 2
        for k in ref.files:
            if k.startswith("p"):
                np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
        np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-5)
        assert np.array_equal(got["confusion"], ref["confusion"])
        assert got["confusion"].sum() == 16  # the validation split, each example once
    lines = (two / "run" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(x)["step"] for x in lines]
    assert steps == [2, 4, 6, 8]  # one writer: no record twice


def test_cluster_kind_detects_explicit_auto_slurm_and_openmpi():
    from mmer_jax.train.sharding import cluster_kind

    assert cluster_kind({}) is None
    assert cluster_kind({"MMER_COORDINATOR": "h:1234", "SLURM_JOB_ID": "1",
                         "SLURM_NTASKS": "4"}) == "explicit"
    assert cluster_kind({"MMER_DISTRIBUTED": "1"}) == "auto"
    assert cluster_kind({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "2"}) == "slurm"
    assert cluster_kind({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}) is None  # one task
    assert cluster_kind({"OMPI_COMM_WORLD_SIZE": "2"}) == "openmpi"
    assert cluster_kind({"OMPI_COMM_WORLD_SIZE": "2", "MMER_DISTRIBUTED": "0"}) is None
