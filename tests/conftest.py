"""Test-session setup: 4 forced CPU devices (data-parallel code runs on a real mesh), the real
corpora's folder (``shared_data``, exported as MMER_DATA_ROOT) and tiny corpora built once per
session."""

import os

# Must happen before jax is imported anywhere in the test session.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# The folder holding the real corpora (emodb/, iemocap_text/, ...): $MMER_DATA_ROOT, else
# ../shared/data beside the checkout. The one place the tests look outside the repository.
DATA_ROOT = pathlib.Path(
    os.environ.get("MMER_DATA_ROOT") or REPO.parent / "shared" / "data"
).expanduser()
if DATA_ROOT.is_dir():
    # Experiment configs read MMER_DATA_ROOT for their default data locations.
    os.environ.setdefault("MMER_DATA_ROOT", str(DATA_ROOT))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The real corpora's folder ($MMER_DATA_ROOT, default ../shared/data beside the checkout).

    Tests using it skip when it is absent (a user's fresh checkout has no ../shared); a test
    needing one corpus skips when ``shared_data / corpus`` is absent.
    """
    if not DATA_ROOT.is_dir():
        pytest.skip(f"no real corpora: {DATA_ROOT} is absent (set MMER_DATA_ROOT to their folder)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def tiny_generated(tmp_path_factory) -> str:
    """Data dir holding the ``generated_emotion/tiny`` corpus, built once per session."""
    from data_prep import build

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    build.build("generated_emotion", "tiny", data_dir)
    return data_dir
