"""benchmarks/batch_layout.py: generated batches keep the real batches' shapes, dtypes, masks,
lengths and packing, and train_compare_torch.py pins both frameworks' threads alike."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(REPO, "benchmarks")
sys.path.insert(0, BENCH)
import batch_layout as bl  # noqa: E402

sys.path.remove(BENCH)


def _dialogue_batch(rng):
    """A packed dialogue batch like S002's (2 dialogues of 3 and 1 utterances)."""
    utt_mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)
    packed = np.zeros((4, 6), np.int32)
    packed[0, :2], packed[1, :6], packed[2, :1], packed[3, :3] = 5, 7, 9, 4
    return {"label": rng.integers(0, 6, (2, 4)).astype(np.int32),
            "weight": utt_mask.astype(np.float32), "utt_mask": utt_mask,
            "speaker": np.array([[0, 1, 0, 0], [0, 0, 0, 0]], np.int32),
            "tokens_packed": packed, "packed_slot": np.array([0, 1, 2, 4], np.int32)}


def _clip_batch(rng):
    """An utterance batch like the quickstart's: PCM, frames and tokens with lengths."""
    pcm = np.zeros((3, 50), np.int16)
    pcm[0, :50], pcm[1, :20], pcm[2, :7] = 11, 12, 13
    frames = np.zeros((3, 4, 2, 2, 3), np.uint8)
    frames[0, :4], frames[1, :1], frames[2, :2] = 200, 201, 202
    tokens = np.zeros((3, 5), np.int32)
    tokens[0, :5], tokens[1, :2] = 3, 4
    return {"audio_pcm": pcm, "audio_len": np.array([50, 20, 7], np.int32),
            "frames_u8": frames, "frames_len": np.array([4, 1, 2], np.int32), "tokens": tokens,
            "label": np.array([0, 1, 2], np.int32), "weight": np.ones(3, np.float32)}


@pytest.mark.parametrize("make", [_dialogue_batch, _clip_batch])
def test_generated_batch_keeps_layout_and_randomises_content(make):
    real = make(np.random.default_rng(0))
    layout = bl.layout_of([real], vocab_size=30, num_classes=6)
    gen = bl.generate(layout, 0)
    assert set(gen) == set(real)
    for key, value in real.items():
        assert gen[key].shape == value.shape and gen[key].dtype == value.dtype, key
    for key in set(real) & set(bl.STRUCTURE):
        np.testing.assert_array_equal(gen[key], real[key])
    for key in set(real) & {"tokens", "tokens_packed", "audio_pcm"}:
        # zero exactly where the real batch is padding, in range elsewhere
        np.testing.assert_array_equal(gen[key] != 0, real[key] != 0)
    if "tokens_packed" in gen:
        assert gen["tokens_packed"].max() < 30 and not np.array_equal(gen["tokens_packed"],
                                                                       real["tokens_packed"])
    if "frames_u8" in gen:
        t = np.arange(4)[None, :]
        valid = t < real["frames_len"][:, None]
        assert (gen["frames_u8"][~valid] == 0).all() and gen["frames_u8"][valid].any()
    assert gen["label"].max() < 6


def test_layout_refuses_a_key_it_has_no_rule_for():
    with pytest.raises(ValueError, match="'embedding'"):
        bl.layout_of([{"embedding": np.zeros(3), "weight": np.ones(3)}], 5, 2)


def test_committed_layout_loads_for_both_models(tmp_path):
    path = os.path.join(BENCH, "data", "train_compare_layout.npz")
    for model, unit, keys in (("s002", "dialogue", {"tokens_packed", "packed_slot", "utt_mask"}),
                              ("quickstart", "utterance", {"audio_pcm", "frames_u8", "tokens"})):
        layout = bl.load(path, model)
        pipe = bl.GeneratedPipeline(layout, 2, unit)
        (b0, b1) = list(pipe.batches("train", None))
        assert keys <= set(b0) and pipe.num_classes >= 2 and pipe.vocab_size > 2
        assert json.loads(str(layout["meta"]))["batches"] >= 2
    with pytest.raises(KeyError, match="no batch layout of 'nope'"):
        bl.load(path, "nope")


def _tc():
    spec = importlib.util.spec_from_file_location("bench_tc_threads",
                                                  os.path.join(BENCH, "train_compare_torch.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_thread_settings_pin_both_frameworks_alike():
    tc = _tc()
    env, prefix = tc.thread_env("1", "PASSIVE", base={"XLA_FLAGS": "--a=1"})
    assert prefix[:2] == ["taskset", "-c"] and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["XLA_FLAGS"].startswith("--a=1 ") and "intra_op_parallelism_threads=1" in env[
        "XLA_FLAGS"] and "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert env["OMP_NUM_THREADS"] == env["MMER_TORCH_THREADS"] == "1"
    env, prefix = tc.thread_env("all", "ACTIVE", base={})
    n = len(os.sched_getaffinity(0))
    assert prefix == [] and env["MMER_TORCH_THREADS"] == str(n) and "XLA_FLAGS" not in env
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"
    with pytest.raises(ValueError, match="'2'"):
        tc.thread_env("2", "PASSIVE")
