"""The refactor of issue 9 keeps behaviour: two fixed-seed runs match their recorded fingerprints
bit for bit (parameters of the latest and best checkpoints, validation and test metrics)."""

import json

import jax
import pytest

from tests.golden import fingerprint as fp


@pytest.fixture(scope="module")
def golden():
    data = json.loads(fp.GOLDEN.read_text())
    if data["jax"] != jax.__version__ or data["device_count"] != jax.device_count():
        pytest.skip(f"fingerprints recorded with jax {data['jax']} on {data['device_count']} "
                    f"devices; XLA's numerics differ between versions")
    if data.get("cpu") != fp.cpu_id():
        pytest.skip(f"fingerprints recorded on {data.get('cpu')}, this CPU is {fp.cpu_id()}; "
                    "XLA's CPU code, and so the last bits, differ between CPU kinds")
    return data


def test_runs_match_their_recorded_fingerprints(golden, tiny_generated, tmp_path):
    got = fp.run_all(tmp_path, tiny_generated)
    for name in ("quickstart_tiny", "s002_dialogue"):
        want = golden[name]
        assert got[name]["variant"] == want["variant"]
        for split in ("validation", "test"):
            assert got[name][split] == want[split], (name, split)
        for which in ("latest", "best"):
            g, w = got[name]["checkpoints"][which], want["checkpoints"][which]
            assert g["step"] == w["step"], (name, which)
            assert g["params"] == w["params"], (name, which, "params")
            assert g["batch_stats"] == w["batch_stats"], (name, which, "batch_stats")
