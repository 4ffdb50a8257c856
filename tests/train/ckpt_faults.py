"""Ways a checkpoint step gets corrupted on disk, for the checkpoint-fault tests (issue 32, kind 4).

Each fault is a function of a step directory (``<workdir>/ckpt/latest/<step>``). The first four
are the issue's examples, the last three this project's variants. Plain standard library: the
subprocess scripts of test_checkpoint_faults.py import it too.
"""

import glob
import os


def _data_files(step_dir):
    state = os.path.join(step_dir, "state")
    files = glob.glob(f"{state}/d/*") + glob.glob(f"{state}/ocdbt.process_*/d/*")
    assert files, step_dir
    return files


def truncate(step_dir):
    for f in _data_files(step_dir):
        os.truncate(f, os.path.getsize(f) // 2)


def zero_fill(step_dir):
    for f in _data_files(step_dir):
        size = os.path.getsize(f)
        with open(f, "wb") as out:
            out.write(b"\0" * size)


def metadata_missing(step_dir):
    os.remove(os.path.join(step_dir, "state", "_METADATA"))


def metadata_empty(step_dir):
    open(os.path.join(step_dir, "state", "_METADATA"), "w").close()


def manifest_truncated(step_dir):  # variant
    os.truncate(os.path.join(step_dir, "state", "manifest.ocdbt"), 10)


def data_files_emptied(step_dir):  # variant: a copy that stopped at 0 bytes
    # Every data file, not one: orbax's concurrent writers leave OCDBT files that the final
    # b-tree no longer references, so emptying "the largest" sometimes hit one of those and the
    # step still restored (a flaky test under load).
    for f in _data_files(step_dir):
        os.truncate(f, 0)


def meta_json_zero_filled(step_dir):  # variant
    path = os.path.join(step_dir, "meta", "metadata")
    size = os.path.getsize(path)
    with open(path, "wb") as out:
        out.write(b"\0" * size)


FAULTS = {
    # name: (corrupt, what the message must say)
    "truncated": (truncate, "is not valid for value of size"),
    "zero-filled": (zero_fill, "Error decoding b-tree node"),
    "_METADATA missing": (metadata_missing, "state/_METADATA is missing"),
    "_METADATA empty": (metadata_empty, "state/_METADATA is empty (0 bytes)"),
    "manifest truncated": (manifest_truncated, "state/manifest.ocdbt: Error decoding manifest"),
    "meta zero-filled": (meta_json_zero_filled, "meta/metadata is zero-filled"),
    "data files emptied": (data_files_emptied, "is not valid for value of size 0"),
}
