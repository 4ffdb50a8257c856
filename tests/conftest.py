"""Test-session setup: 4 forced CPU devices (data-parallel code runs on a real mesh), the real
corpora's folder (``shared_data``, exported as MMER_DATA_ROOT) and tiny corpora built once per
session.

Most of the suite's time is XLA compilation (a profile of 2026-12-07: 58 % of test time in
~9,000 compilations). What made tests slow, and the cure:

- an eager ``jax.random`` draw or an eager ``model.init`` compiles a threefry program per
  shape (~0.3 s each on CPU): draw test inputs with numpy, initialise inside ``jax.jit``
  (an ``impl="rbg"`` key compiles faster where the test does not depend on the stream);
- eager ``jnp``/Flax ops compile one small program per op and shape (~20 ms each; an eager
  ``model.apply`` is often hundreds): jit the apply and reuse one jitted function;
- a key, batch or weights closed over by a jitted function are constants of its program, so
  each seed or run compiles again: pass them as arguments (the train step does).
"""

import os

# Must happen before jax is imported anywhere in the test session.
# (XLA's LLVM at -O0 would compile a sixth faster, but it moved a ResNet-50 gradient by 1 %
# against PyTorch's: the suite tests the code generation users get.)
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")


def _cap_vector_extensions() -> None:
    """Caps XLA's CPU code at the widest level the golden fingerprints are recorded for that this
    CPU has (``--xla_cpu_max_isa``, unless XLA_FLAGS already names one), so the golden test runs
    in this process, sharing its compiled programs, instead of in a child process of its own.
    On the CPUs the suite runs on (AVX-512 or AVX2) the cap is the host's own widest level: the
    AVX-512 fingerprints equal those recorded without a cap, bit for bit."""
    import json

    from mmer_jax.train.determinism import cpu_isa_levels, xla_cpu_max_isa  # no jax import

    if xla_cpu_max_isa() is None:
        golden = os.path.join(os.path.dirname(__file__), "golden", "golden.json")
        with open(golden) as f:
            recorded = json.load(f)["levels"]
        both = [lv for lv in cpu_isa_levels() if lv in recorded]  # narrow to wide
        if both:
            os.environ["XLA_FLAGS"] += f" --xla_cpu_max_isa={both[-1]}"


_cap_vector_extensions()

# MMER_REQUIRE_GPU=1 (set by benchmarks/gpu_check.py for its GPU tests): the tests run on the
# machine's GPU, and a ``gpu``-marked test that skips counts as a failure
# (pytest_runtest_makereport below), so a GPU check whose kernels never ran cannot read "passed".
REQUIRE_GPU = os.environ.get("MMER_REQUIRE_GPU") == "1"
if not REQUIRE_GPU:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the session, shared by the xdist workers and every
# `mmer` subprocess a test starts (they inherit the environment): the same programs are compiled
# again by each train/eval/resume/predict subprocess, and reading them back halves those tests.
# Set by the first process (the xdist controller) and removed when it ends.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="mmer-tests-jax-cache-")
    os.environ["MMER_TESTS_OWN_JAX_CACHE"] = str(os.getpid())
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pathlib  # noqa: E402
import shutil  # noqa: E402

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under MMER_REQUIRE_GPU=1 a skipped ``gpu``-marked test is reported as failed, naming why
    it skipped."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_GPU and report.skipped and item.get_closest_marker("gpu") is not None:
        why = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"MMER_REQUIRE_GPU=1: this gpu test skipped instead of running ({why})"


def pytest_sessionfinish(session):
    """The session's compilation cache goes with the process that made it."""
    if os.environ.get("MMER_TESTS_OWN_JAX_CACHE") == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


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
