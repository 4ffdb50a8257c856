"""Generated corpus: the tiny config builds, has the contract's fields, is seed-deterministic."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from data_prep.generated import generated
from data_prep.generated.design import CLASSES

SPLITS = ("train", "validation", "test")


def _text(x) -> str:
    # array_record sources hand Text features back as bytes.
    return x.decode() if isinstance(x, bytes) else str(x)


def _read(builder) -> dict[str, list[dict]]:
    sources = builder.as_data_source()
    return {s: [sources[s][i] for i in range(len(sources[s]))] for s in SPLITS}


def _build_tiny_seed(data_dir: Path, seed: int):
    """Builds ``tiny`` with another seed: a custom config, which TFDS wants under a new name."""
    tiny = next(c for c in generated.GeneratedEmotion.BUILDER_CONFIGS if c.name == "tiny")
    cfg = dataclasses.replace(tiny, name=f"tiny_seed{seed}", seed=seed)
    builder = generated.GeneratedEmotion(config=cfg, data_dir=str(data_dir),
                                         file_format="array_record")
    builder.download_and_prepare(file_format="array_record")
    return builder


@pytest.fixture(scope="module")
def tiny(tiny_generated):
    from data_prep.build import build

    return _read(build("generated_emotion", "tiny", tiny_generated))


def _by_id(examples):
    return {_text(e["id"]): e for s in SPLITS for e in examples[s]}


def test_counts(tiny):
    assert {s: len(v) for s, v in tiny.items()} == {"train": 64, "validation": 16, "test": 16}


def test_build_writes_its_report(tiny_generated):
    """Like every corpus, a generated build leaves ``build_report.json`` beside its data (issue
    33); its counts are those of the stored splits."""
    from data_prep._common.report import read_report
    from data_prep.build import get_builder

    rep = read_report(get_builder("generated_emotion", "tiny", tiny_generated))
    assert {s: v["count"] for s, v in rep["splits"].items()} == {
        "test": 16, "train": 64, "validation": 16}
    assert rep["skipped_total"] == 0 and rep["resampled_examples"] == 0
    assert sum(rep["splits"]["train"]["per_class"].values()) == 64
    assert set(rep["splits"]["train"]["per_class"]) == set(CLASSES)
    assert 0.8 * 16 <= rep["splits"]["test"]["duration_s"]["total"] <= 1.2 * 16


def test_fields(tiny):
    for e in tiny["train"] + tiny["test"]:
        audio, frames = e["audio"], e["frames"]
        assert audio.dtype == np.int16 and audio.ndim == 1
        assert 0.8 * 16000 <= audio.shape[0] <= 1.2 * 16000
        assert 500 < np.abs(audio).max() < 32767  # audible, not clipped flat
        assert frames.dtype == np.uint8 and frames.shape[1:] == (32, 32, 3)
        assert 6 <= frames.shape[0] <= 10 and frames.std() > 10
        assert 5 <= len(_text(e["text"]).split()) <= 12
        assert 0 <= int(e["label"]) < len(CLASSES)
        assert _text(e["id"]).startswith(_text(e["speaker"]) + "_")


def test_speakers_disjoint_and_classes_covered(tiny):
    by = {s: {_text(e["speaker"]) for e in tiny[s]} for s in SPLITS}
    assert [len(by[s]) for s in SPLITS] == [2, 1, 1]
    assert not (by["train"] & by["validation"] or by["train"] & by["test"]
                or by["validation"] & by["test"])
    assert {int(e["label"]) for e in tiny["train"]} == set(range(len(CLASSES)))


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    from data_prep.build import build

    again = _read(build("generated_emotion", "tiny", str(tmp_path / "a")))
    ref, same = _by_id(tiny), _by_id(again)
    assert ref.keys() == same.keys()
    for key, e in ref.items():
        for field in ("audio", "frames"):
            assert e[field].dtype == same[key][field].dtype
            assert np.array_equal(e[field], same[key][field]), (key, field)
        for field in ("text", "speaker", "label"):
            assert e[field] == same[key][field], (key, field)

    other = _by_id(_read(_build_tiny_seed(tmp_path / "b", seed=1)))
    assert other.keys() == ref.keys()  # ids depend on sizes, not on the seed
    assert not any(np.array_equal(ref[k]["audio"], other[k]["audio"]) for k in ref)
    assert sum(ref[k]["text"] != other[k]["text"] for k in ref) > len(ref) // 2
