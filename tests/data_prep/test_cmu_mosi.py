"""CMU-MOSI / CMU-MOSEI builders over generated MulT and MMSA pickles."""

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_text import MOSI_DIMS, MOSI_SPLIT_SIZES, mosi_object, write_pickle  # noqa: E402

from data_prep._common.mosi_pickle import find_pickle  # noqa: E402
from data_prep._common.report import CorpusError, read_report  # noqa: E402
from data_prep._common.safe_pickle import CorruptPickleError, UnsafePickleError  # noqa: E402
from data_prep.build import build  # noqa: E402

SPLITS = {"train": "train", "validation": "valid", "test": "test"}


def _read(builder, split):
    ds = tfds.data_source(builder.info.full_name.rsplit("/", 1)[0], split=split,
                          data_dir=builder._data_dir_root)
    return sorted((ds[i] for i in range(len(ds))), key=lambda ex: ex["id"])


def _s(x):
    return x.decode() if isinstance(x, bytes) else x


@pytest.mark.parametrize("corpus,config,fname,kind", [
    ("cmu_mosi", "aligned", "mosi_data.pkl", "mult"),
    ("cmu_mosi", "unaligned", "MOSI/Processed/unaligned_50.pkl", "mmsa"),
    ("cmu_mosei", "aligned", "mosei_senti_data.pkl", "mult"),
    ("cmu_mosei", "unaligned", "MOSEI/Processed/unaligned_50.pkl", "mmsa"),
])
def test_build(tmp_path, corpus, config, fname, kind):
    obj = mosi_object(kind, aligned=config == "aligned")
    write_pickle(tmp_path / "raw" / fname, obj, protocol=2 if kind == "mult" else 4)
    b = build(corpus, config, str(tmp_path / "tfds"), str(tmp_path / "raw"))
    rep = read_report(b)
    assert rep["notes"]["release"] == kind
    # Two -inf in clip 0 and one in the last clip, per split; MMSA cuts the last clip's
    # audio to fewer frames but frame 3 survives.
    assert rep["notes"]["nonfinite_zeroed"] == {"audio": 3 * len(SPLITS)}
    assert rep["notes"]["feature_dims"] == MOSI_DIMS
    for split, key in SPLITS.items():
        src = obj[key]
        exs = _read(b, split)
        assert len(exs) == MOSI_SPLIT_SIZES[key]
        for i, ex in enumerate(sorted(exs, key=lambda e: int(_s(e["id"]).split("$_$")[1]))):
            score = float(np.asarray(src["labels" if kind == "mult" else "regression_labels"][i]
                                     ).reshape(-1)[0])
            vid = f"vid{list(SPLITS).index(split)}{i // 2}"
            assert _s(ex["id"]) == f"{vid}$_${i}" and _s(ex["dialogue_id"]) == vid
            assert ex["score"] == pytest.approx(score)
            assert ex["label"] == int(score >= 0)
            for m in MOSI_DIMS:
                x = ex[f"{m}_feat"]
                assert x.dtype == np.float32 and np.isfinite(x).all()
                assert x.shape[1] == MOSI_DIMS[m]
                if kind == "mmsa" and m != "text":
                    assert x.shape[0] == src[f"{m}_lengths"][i]
                else:
                    assert x.shape[0] == src[m].shape[1]
            if i == 0:
                assert (ex["audio_feat"][0, :2] == 0).all()
            assert _s(ex["text"]) == ("" if kind == "mult" else f"segment {i} of {vid}")


def test_find_pickle_prefers_mult_and_names_tried_paths(tmp_path):
    write_pickle(tmp_path / "MOSI" / "Processed" / "aligned_50.pkl", {})
    assert find_pickle(str(tmp_path), "cmu_mosi", "aligned")[1] == "mmsa"
    write_pickle(tmp_path / "mosi_data.pkl", {})
    assert find_pickle(str(tmp_path), "cmu_mosi", "aligned")[1] == "mult"
    # MOSI's MMSA file is never taken for MOSEI.
    with pytest.raises(FileNotFoundError, match="mosei_senti_data.pkl"):
        find_pickle(str(tmp_path), "cmu_mosei", "aligned")


def test_missing_pickle_is_corpus_error(tmp_path):
    write_pickle(tmp_path / "raw" / "mosi_data_noalign.pkl", {})
    with pytest.raises(CorpusError, match="mosi_data.pkl"):
        build("cmu_mosi", "aligned", str(tmp_path / "tfds"), str(tmp_path / "raw"))


def test_truncated_pickle_names_file(tmp_path):
    path = write_pickle(tmp_path / "raw" / "mosi_data.pkl", mosi_object("mult"))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CorruptPickleError, match=r"mosi_data\.pkl.*truncated"):
        build("cmu_mosi", "aligned", str(tmp_path / "tfds"), str(tmp_path / "raw"))


def test_malicious_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "raw" / "mosi_data.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps({"train": Evil()}))
    with pytest.raises(UnsafePickleError, match=r"mosi_data\.pkl.*system"):
        build("cmu_mosi", "aligned", str(tmp_path / "tfds"), str(tmp_path / "raw"))
