"""Fault 1 of issue 11: every host pads its slice of a global batch to the widths of the *global*
batch, so two simulated hosts (process_index 0/1 of 2) build identical shapes for every batch,
train and eval, equal to the one-host shapes; their rows together are the one-host batch."""

import ml_collections
import numpy as np
import pytest

from mmer_jax.data.pipeline import make_pipeline

from .test_dialogue import _cosmic


def _hosts_agree(pipe, split, global_batch, train, epoch=0):
    one = list(pipe.batches(split, global_batch, epoch=epoch, train=train))
    hosts = [
        list(pipe.batches(split, global_batch, epoch=epoch, train=train, process_index=i,
                          process_count=2))
        for i in range(2)
    ]
    assert len(one) == len(hosts[0]) == len(hosts[1]) > 1
    ragged = set()
    for b, h0, h1 in zip(one, *hosts, strict=True):
        assert set(h0) == set(h1) == set(b)
        for k in b:
            assert h0[k].shape == h1[k].shape, (split, k)
            assert h0[k].shape[1:] == b[k].shape[1:], (split, k)  # the one-host widths
            # Host slices stacked are the one-host batch, bit for bit (rngs by global position).
            np.testing.assert_array_equal(np.concatenate([h0[k], h1[k]]), b[k])
        ragged.add(tuple(v.shape for v in b.values()))
    return ragged


class _Ragged:
    """A source whose clips are cut to lengths that vary by index, and texts to 1..7 words."""

    def __init__(self, source):
        self.source = source

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        ex = dict(self.source[i])
        ex["audio"] = ex["audio"][: 2000 + 1700 * (i * 7 % 11)]
        words = ex["text"].decode().split() if isinstance(ex["text"], bytes) else ex["text"].split()
        ex["text"] = " ".join((words * 7)[: 1 + i * 5 % 7])
        return ex


def test_two_hosts_same_shapes_utterance(tiny_generated):
    data = ml_collections.ConfigDict(dict(
        corpus="generated_emotion", config="tiny", data_dir=tiny_generated, read_threads=0,
        cache=True, audio_bucket_s=0.25, token_bucket=2, max_tokens=32, min_count=1))
    pipe = make_pipeline(data, ["audio", "text"], seed=3)
    pipe.sources.update({k: _Ragged(v) for k, v in pipe.sources.items()})
    shapes = set()
    for split, train in (("train", True), ("validation", False), ("test", False)):
        shapes |= _hosts_agree(pipe, split, 8, train)
    assert len(shapes) > 1  # the data is ragged: the widths differ between batches


@pytest.mark.parametrize("threads", [0, 2])
def test_two_hosts_same_shapes_dialogue(tmp_path, threads):
    _cosmic(tmp_path / "manual")
    data = ml_collections.ConfigDict(dict(
        corpus="iemocap", config="text", data_dir=str(tmp_path / "tfds"),
        manual_dir=str(tmp_path / "manual"), build_if_missing=True, cache=True,
        read_threads=threads, unit="dialogue", max_utterances=8, utterance_bucket=2,
        max_tokens=6, token_bucket=2, min_count=1))
    pipe = make_pipeline(data, ["text"], seed=0)
    shapes = _hosts_agree(pipe, "train", 2, True)
    shapes |= _hosts_agree(pipe, "test", 2, False)
    assert len(shapes) > 1
