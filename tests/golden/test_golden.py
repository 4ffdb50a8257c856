"""The refactor of issue 9 keeps behaviour: two fixed-seed runs match their recorded fingerprints
bit for bit (parameters of the latest and best checkpoints, validation and test metrics).

The runs are capped at a vector-extension level (``--xla_cpu_max_isa``), so the comparison holds
on any x86 CPU that has the level, not only on the CPU kind that recorded the fingerprints. They
run in this process when ``tests/conftest.py`` capped it at that level (the default), so they
share the session's compiled programs; in a child process otherwise."""

import json

import jax
import pytest

from mmer_jax.train.determinism import cpu_isa_levels, xla_cpu_max_isa
from tests.golden import fingerprint as fp


@pytest.fixture(scope="module")
def golden():
    data = json.loads(fp.GOLDEN.read_text())
    if data["jax"] != jax.__version__:
        pytest.skip(f"fingerprints recorded with jax {data['jax']}; XLA's numerics differ "
                    "between versions")
    have = cpu_isa_levels()
    level = next((lv for lv in fp.GOLDEN_LEVELS if lv in data["levels"] and lv in have), None)
    if level is None:
        pytest.skip(f"fingerprints recorded for x86 levels {sorted(data['levels'])}; this CPU "
                    f"({fp.cpu_id()}) has none of them")
    return level, data["levels"][level]


def test_runs_match_their_recorded_fingerprints(golden, tiny_generated, tmp_path):
    level, want_all = golden
    if xla_cpu_max_isa() == level:  # tests/conftest.py capped this process at the level
        got = fp.run_all(tmp_path, tiny_generated)
        got["device_count"] = jax.device_count()
    else:
        got = fp.fingerprint_at(level, tiny_generated)
    assert got["device_count"] == 4
    for name in ("quickstart_tiny", "s002_dialogue"):
        want = want_all[name]
        assert got[name]["variant"] == want["variant"]
        for split in ("validation", "test"):
            assert got[name][split] == want[split], (level, name, split)
        for which in ("latest", "best"):
            g, w = got[name]["checkpoints"][which], want["checkpoints"][which]
            assert g["step"] == w["step"], (level, name, which)
            assert g["params"] == w["params"], (level, name, which, "params")
            assert g["batch_stats"] == w["batch_stats"], (level, name, which, "batch_stats")


def test_the_cap_changes_the_numerics_it_is_meant_to_pin():
    """The recorded levels differ from each other: were ``--xla_cpu_max_isa`` ignored, the test
    above would compare the host's own numerics and could not catch a CPU-dependent result."""
    data = json.loads(fp.GOLDEN.read_text())
    levels = list(data["levels"].values())
    assert len(levels) >= 2
    a, b = (lv["s002_dialogue"]["checkpoints"]["latest"]["params"] for lv in levels[:2])
    assert a != b
