"""benchmarks/scaling.py: the collective accounting (HLO and profile) and a 1- and 2-device run."""

import gzip
import importlib.util
import json
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    "bench_scaling", os.path.join(REPO, "benchmarks", "scaling.py"))
scaling = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scaling)


def test_hlo_collectives_counts_all_reduce_ops_and_bytes():
    hlo = "\n".join([
        "  %all-reduce = f32[256,256]{1,0} all-reduce(%dot.1), channel_id=1, to_apply=%add",
        "  %all-reduce.2 = (f32[10]{0}, s32[]) all-reduce(%a, %b), channel_id=2, to_apply=%add",
        "  %fusion = f32[4]{0} fusion(%all-reduce), kind=kLoop",
        "  %ag = f32[8]{0} all-gather(%x), dimensions={0}",
    ])
    got = scaling.hlo_collectives(hlo)
    assert got == {"all_reduce_ops": 2, "all_reduce_bytes": 256 * 256 * 4 + 10 * 4 + 4}


def _event(name, ts, dur, tid):
    return {"ph": "X", "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": tid}


def test_profile_share_is_collective_time_over_busy_time(tmp_path):
    events = []
    for tid in (1, 2):
        events += [_event("while", 0, 60, tid),         # a loop thunk ...
                   _event("fusion.3", 10, 20, tid),     # ... and its body: counted once
                   _event("dot.1", 60, 20, tid),
                   _event("all-reduce", 80, 20, tid),   # 20 of 100 busy us per device
                   _event("Rendezvous", 82, 15, tid),   # its wait for the other device
                   _event("Wait for LaunchOnDevice completion", 0, 200, tid),  # not an op
                   _event("$profiler.py:1 stop_trace", 0, 300, tid)]
    path = tmp_path / "plugins" / "profile" / "x" / "vm.trace.json.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt") as f:
        json.dump({"traceEvents": events}, f)
    got = scaling.profile_shares(str(tmp_path))
    assert got["busy_ms"] == pytest.approx(0.2)
    assert got["collective_ms"] == pytest.approx(0.04)
    assert got["rendezvous_ms"] == pytest.approx(0.03)
    assert got["comm_share_profile"] == pytest.approx(0.2)


@pytest.mark.slow  # two subprocesses compile the quickstart step: minutes on 2 loaded cores
def test_one_and_two_devices_write_the_table(tmp_path, tiny_generated):
    out = tmp_path / "scaling.json"
    code = scaling.main(["--devices", "1,2", "--steps", "2", "--batches", "1", "--rounds", "1",
                         "--profile_steps", "1", "--out", str(out), "--override",
                         f"data.data_dir={tiny_generated}", "--override", "data.config=tiny"])
    assert code == 0
    rec = json.loads(out.read_text())
    one, two = rec["rows"]
    assert (one["devices"], two["devices"]) == (1, 2)
    assert one["global_batch"] == two["global_batch"] == 2 * two["per_device_batch"]
    assert one["all_reduce_ops"] == 0 and two["all_reduce_ops"] > 0
    assert two["all_reduce_bytes"] >= 4 * two["params"]  # the gradients, at least
    assert 0 < two["comm_share_profile"] < 1 and one["comm_share_profile"] == 0
    assert "physical cores" in rec["notes"] and rec["method"] == scaling.METHOD
