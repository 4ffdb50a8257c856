"""Precomputed pitch-shift copies join the training split, cached per run directory."""

import os

import numpy as np
import pytest

from mmer_jax.data.augment import cache as S
from mmer_jax.data.augment import offline
from mmer_jax.errors import UsageError

SR = 16000
OPS = [("pitch_shift", {"n_steps": 2})]


def _source(n=3):
    t = np.arange(SR // 4) / SR
    return [
        {
            "id": f"clip{i}".encode(),
            "label": i % 2,
            "speaker": "s1",
            "audio": (8000 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.int16),
        }
        for i in range(n)
    ]


def test_copies_follow_originals_and_keep_labels(tmp_path):
    pytest.importorskip("librosa")
    src = _source()
    copies = S.load_or_make_copies(src, OPS, SR, str(tmp_path))
    aug = S.AugmentedTrainSource(src, OPS, copies)
    assert len(aug) == 6
    assert aug[1] is src[1]  # originals untouched, same objects
    copy = aug[4]
    assert copy["id"] == "clip1_pitch_shift_n_steps_2" and copy["label"] == 1
    assert copy["speaker"] == "s1" and copy["audio"].dtype == np.int16
    assert copy["audio"].shape == src[1]["audio"].shape
    assert not np.array_equal(copy["audio"], src[1]["audio"])
    assert "_pitch" not in src[1]["id"].decode()  # the original dict was not modified


def test_cache_is_reused_and_a_truncated_one_is_rebuilt(tmp_path, monkeypatch):
    pytest.importorskip("librosa")
    src = _source()
    first = S.load_or_make_copies(src, OPS, SR, str(tmp_path))
    path = tmp_path / "pitch_shift_n_steps_2.npz"
    assert path.exists()

    def boom(*a, **k):
        raise AssertionError("recomputed although the cache is valid")

    monkeypatch.setattr(S, "precompute_augmented_copies", boom)
    again = S.load_or_make_copies(src, OPS, SR, str(tmp_path))
    for a, b in zip(first[0], again[0], strict=False):
        np.testing.assert_array_equal(a, b)
    # A cache made from other clips (another corpus, or a rebuild) is not reused.
    with pytest.raises(AssertionError, match="recomputed"):
        S.load_or_make_copies(src[:2], OPS, SR, str(tmp_path))
    renamed = [dict(ex, id=b"other" + ex["id"]) for ex in src]
    with pytest.raises(AssertionError, match="recomputed"):
        S.load_or_make_copies(renamed, OPS, SR, str(tmp_path))
    monkeypatch.undo()
    with open(path, "r+b") as f:  # truncate: the next run must recompute, not crash
        f.truncate(os.path.getsize(path) // 2)
    rebuilt = S.load_or_make_copies(src, OPS, SR, str(tmp_path))
    np.testing.assert_array_equal(rebuilt[0][2], first[0][2])


def test_unknown_offline_op_names_the_key():
    with pytest.raises(UsageError, match=r"data.offline_augment\[1\].*reverb"):
        offline.parse_ops([{"name": "pitch_shift", "n_steps": 2}, {"name": "reverb"}])
