"""The restricted unpickler: plain data and numpy load; anything that could run code is refused."""

import collections
import os
import pickle

import numpy as np
import pytest

from data_prep._common.safe_pickle import (
    CorruptPickleError,
    UnsafePickleError,
    safe_load,
    safe_loads,
)


class _RunsShell:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class _Custom:
    pass


def _sample():
    return {
        "train": {"x": np.arange(12, dtype=np.float32).reshape(2, 3, 2),
                  "id": np.array(["a", "b"])},
        "scalars": [np.float64(1.5), np.int64(-3), 1 + 2j, b"raw", bytearray(b"ba")],
        "sets": ({1, 2}, frozenset({"x"})),
        "rec": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        "obj": np.array(["s", 3, None], dtype=object),
        "ordered": collections.OrderedDict(k=1),
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_round_trip_every_protocol(protocol):
    obj = _sample()
    out = safe_loads(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(out["train"]["x"], obj["train"]["x"])
    assert out["train"]["x"].dtype == np.float32
    np.testing.assert_array_equal(out["rec"], obj["rec"])
    assert out["scalars"][:4] == obj["scalars"][:4]
    assert out["sets"] == obj["sets"] and out["ordered"] == obj["ordered"]
    assert list(out["obj"]) == ["s", 3, None]


def test_numpy1_module_names_are_accepted():
    # numpy 1.x pickles name numpy.core.multiarray; numpy 2 writes numpy._core.multiarray.
    data = pickle.dumps(np.arange(3.0), protocol=2).replace(b"numpy._core.multiarray",
                                                            b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in data
    np.testing.assert_array_equal(safe_loads(data), np.arange(3.0))


def test_path_and_file_object(tmp_path):
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(_sample()))
    assert set(safe_load(path)) == set(_sample())
    with open(path, "rb") as f:
        assert set(safe_load(f)) == set(_sample())


def test_os_system_is_refused_without_running(tmp_path, capfd):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"a": _RunsShell()}))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*system"):
        safe_load(path)
    assert "pwned" not in capfd.readouterr().out


@pytest.mark.parametrize("obj", [_Custom(), pickle.loads, np.load, [eval]])
def test_other_globals_are_refused(obj, tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(UnsafePickleError, match="x.pkl: refused global"):
        safe_load(path)


def test_truncated_pickle_names_file(tmp_path):
    data = pickle.dumps(_sample())
    path = tmp_path / "cut.pkl"
    for n in (0, 5, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:n])
        with pytest.raises(CorruptPickleError, match=r"cut\.pkl.*truncated"):
            safe_load(path)


def test_garbage_names_file(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"\x80\x04this is not a pickle at all" * 3)
    with pytest.raises(CorruptPickleError, match=r"junk\.pkl"):
        safe_load(path)
