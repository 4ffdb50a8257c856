"""benchmarks/gpu_check.py fits its lease and cannot pass falsely; every step imports only what
the GPU machine has (benchmarks/gpu_machine.py)."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(REPO, "benchmarks")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(BENCH,
                                                                            f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gc = _load("gpu_check")
gm = _load("gpu_machine")

# The files each step runs (scripts, modules, and for pytest every test file it collects).
STEP_ENTRIES = {
    "probe": ["benchmarks/gpu_check.py"],
    "gpu_tests": ["tests/conftest.py", "tests/kernels/conftest.py"] + sorted(
        f"tests/kernels/{f}" for f in os.listdir(os.path.join(REPO, "tests", "kernels"))
        if f.startswith("test_") and f.endswith(".py")),
    "peaks": ["benchmarks/gpu_check.py", "mmer_kernels/_timing.py"],
    "pretrained_encoders": ["benchmarks/pretrained_encoders.py"],
    "bench": ["mmer_kernels/bench.py"],
    "train_compare_torch": ["benchmarks/train_compare_torch.py", "benchmarks/batch_layout.py"],
    "ssl_finetune": ["benchmarks/ssl_finetune_step.py"],
    "autotune_attention": ["mmer_kernels/autotune.py"],
    "autotune_dynamic_conv": ["mmer_kernels/autotune.py"],
}


def test_every_step_has_its_entries_listed():
    assert set(STEP_ENTRIES) == set(gc.STEPS)


@pytest.mark.parametrize("step", sorted(STEP_ENTRIES))
def test_step_imports_only_what_the_gpu_machine_has(step):
    entries = [os.path.join(REPO, e) for e in STEP_ENTRIES[step]]
    needed = gm.import_closure(entries)
    outside = {top: files for top, files in needed.items() if not gm.allowed(top)}
    assert not outside, f"step {step} imports modules the GPU machine lacks: {outside}"


def test_closure_finds_a_forbidden_import_behind_a_chain(tmp_path, monkeypatch):
    """The checker itself: a module-level import two repository modules away is found; the same
    import inside a function of a reached module is left to the dry run."""
    pkg = tmp_path / "mmer_fake"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("import numpy\nimport tensorflow_datasets as tfds\n"
                              "def f():\n    import librosa\n")
    entry = tmp_path / "entry.py"
    entry.write_text("def main():\n    import mmer_fake.a\n")
    monkeypatch.setattr(gm, "REPO", str(tmp_path))
    got = gm.import_closure([str(entry)])
    assert set(got) == {"numpy", "tensorflow_datasets"}, got
    assert got["tensorflow_datasets"] == ["mmer_fake/b.py"]
    assert not gm.allowed("tensorflow_datasets") and gm.allowed("numpy")


def test_known_absent_modules_are_refused_and_carried_wheels_named():
    assert not any(gm.allowed(m) for m in gm.KNOWN_ABSENT)
    assert {w.split("==")[0] for w in gm.CARRIED_WHEELS} == set(gm.CARRIED_PACKAGES)
    assert not gm.CARRIED_PACKAGES & gm.MACHINE_PACKAGES


def test_blocker_hides_modules_as_the_machine_would(tmp_path):
    code = ("import importlib.util, json, sys; sys.path.insert(0, 'mmer_kernels');"
            "import numpy;"  # allowed
            "r = {'spec': importlib.util.find_spec('tensorflow_datasets') is None};"
            "exec('try:\\n import tensorflow_datasets\\n r[\"imp\"]=False\\n'"
            "     'except ModuleNotFoundError:\\n r[\"imp\"]=True');"
            "print(json.dumps(r))")
    log = tmp_path / "blocked.txt"
    env = {**os.environ, "MMER_GPU_MACHINE_ONLY": "1", "MMER_GPU_BLOCKED_LOG": str(log),
           "PYTHONPATH": os.path.join(BENCH, "gpu_rehearsal")}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-1500:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"spec": True, "imp": True}
    assert "tensorflow_datasets" in log.read_text()


def test_budgets_fit_the_lease():
    """Steps' GPU budgets under the shell's hard timeout, which leaves a 15-minute lease time
    for the machine's start (1-2 min), the transfers and a rerun of a step."""
    total = sum(gpu for gpu, _ in gc.STEPS.values())
    sh = open(os.path.join(BENCH, "gpu_check.sh")).read()
    gpu_limit, dry_limit = (int(t) for t in re.findall(r"timeout (\d+) python3 benchmarks/"
                                                        r"gpu_check.py", sh)[::-1])
    assert total <= gpu_limit <= 9 * 60
    assert sum(cpu for _, cpu in gc.STEPS.values()) <= dry_limit
    assert list(gc.STEPS)[:3] == ["probe", "gpu_tests", "peaks"]  # correctness first


def test_step_commands_run_python3_without_preallocation(tmp_path):
    for name in gc.STEPS:
        for dry in (False, True):
            cmd, env, _ = gc.step_command(name, dry, str(tmp_path), "h100", "d", "s.json")
            assert cmd[0] == gc.PY and env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
            assert REPO in env["PYTHONPATH"].split(os.pathsep)
            assert (env.get("MMER_REQUIRE_GPU") == "1") == (name == "gpu_tests")
    assert "exec timeout" in open(os.path.join(BENCH, "gpu_check.sh")).read()
    assert "python3 benchmarks/gpu_check.py" in open(os.path.join(BENCH, "gpu_check.sh")).read()


def _fake_steps(monkeypatch, tmp_path, sleeps):
    """Steps replaced by tiny commands: the probe writes a CPU probe; others sleep."""
    def step_command(name, dry, out, slug, date, summary):
        if name == "probe":
            code = (f"import json; json.dump({{'device': 'cpu', 'backend': 'cpu'}}, "
                    f"open({os.path.join(gc._SCRATCH, 'probe.json')!r}, 'w'))")
        else:
            code = f"import time; time.sleep({sleeps.get(name, 0)}); print('{name} done')"
        return [sys.executable, "-c", code], gc._child_env(), None

    monkeypatch.setattr(gc, "step_command", step_command)
    monkeypatch.setattr(gc, "STEPS", {"probe": (5, 5), "one": (5, 5), "two": (1, 1),
                                      "three": (5, 5)})
    gc._SUMMARY.clear()


def test_a_timed_out_step_keeps_what_finished(tmp_path, monkeypatch):
    _fake_steps(monkeypatch, tmp_path, {"two": 30})
    assert gc.main(["--out", str(tmp_path), "--steps", "probe,one,two,three"]) == 1
    (path,) = tmp_path.glob("gpu-check-cpu-*.json")
    steps = json.loads(path.read_text())["steps"]
    assert steps["one"]["status"] == "passed" and steps["one"]["tail"] == ["one done"]
    # two's budget is its own 1 s plus what one left unspent, never more than the whole.
    assert steps["two"]["status"].startswith("timed out") and steps["two"]["budget_s"] <= 16
    assert steps["three"]["status"] in ("passed",) or steps["three"]["status"].startswith("not")


def test_summary_is_written_after_each_step(tmp_path, monkeypatch):
    seen = []
    real_write = gc._write

    def spy(path):
        real_write(path)
        seen.append(sorted(json.loads(open(path).read())["steps"]))

    _fake_steps(monkeypatch, tmp_path, {})
    monkeypatch.setattr(gc, "_write", spy)
    assert gc.main(["--out", str(tmp_path), "--steps", "probe,one,three"]) == 0
    assert seen == [["probe"], ["one", "probe"], ["one", "probe", "three"]]
    assert [p.name for p in tmp_path.iterdir()] == [f"gpu-check-cpu-{gc.datetime.date.today()}"
                                                    ".json"]  # nothing else in --out


def test_gpu_test_counts_are_read_and_none_ran_fails():
    assert gc._pytest_counts(["", "1 failed, 7 passed, 3 deselected in 2.1s"]) == {
        "failed": 1, "passed": 7, "deselected": 3}
    assert gc._pytest_counts(["8 skipped, 1 error in 1s"]) == {"skipped": 8, "error": 1}


def test_require_gpu_turns_a_skipped_gpu_test_into_a_failure():
    """On this CPU the cuDNN test of test_kernels_dispatch skips (plain pytest passes on it);
    with MMER_REQUIRE_GPU=1 that skip is a failure that says why."""
    if os.environ.get("JAX_PLATFORMS", "cpu") != "cpu":
        pytest.skip("needs the tests' CPU platform")
    cmd = [sys.executable, "-m", "pytest", "tests/kernels/test_kernels_dispatch.py", "-m", "gpu",
           "-n", "0", "-q", "-p", "no:cacheprovider"]
    strict = subprocess.run(cmd, cwd=REPO, env={**os.environ, "JAX_PLATFORMS": "cpu",
                                                "MMER_REQUIRE_GPU": "1"},
                            capture_output=True, text=True, timeout=300)
    assert strict.returncode == 1, strict.stdout[-800:]
    assert "gpu test skipped instead of running" in strict.stdout
    counts = gc._pytest_counts(strict.stdout.splitlines())
    assert counts.get("passed", 0) == 0 and counts.get("error", 0) == 1, counts


def test_the_parent_never_imports_jax():
    """Only the step processes touch the GPU (the parent would otherwise hold its memory)."""
    code = (f"import sys; sys.path.insert(0, {BENCH!r}); import gpu_check; "
            "print('jax' in sys.modules, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr[-800:]
