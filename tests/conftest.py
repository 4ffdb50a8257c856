"""Test-session setup: 4 forced CPU devices (data-parallel code runs on a real mesh) and shared
tiny corpora built once per session."""

import os

# Must happen before jax is imported anywhere in the test session.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """``../shared/data`` beside the checkout; tests using it skip when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is absent (a user's fresh checkout has no ../shared)")
    return path


@pytest.fixture(scope="session")
def tiny_generated(tmp_path_factory) -> str:
    """Data dir holding the ``generated_emotion/tiny`` corpus, built once per session."""
    from data_prep import build

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    build.build("generated_emotion", "tiny", data_dir)
    return data_dir
