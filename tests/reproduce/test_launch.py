"""`mmer reproduce --launcher`: seeds as independent submitit jobs (local processes here),
resumable, gathered into the same report as an inline run."""

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
from fixtures_text import write_cosmic  # noqa: E402

from mmer_jax.errors import RunError, UsageError  # noqa: E402
from mmer_jax.reproduce.launch import LaunchOptions, run_jobs  # noqa: E402

TINY = ["model.text.embed_dim=8", "model.text.filters=4", "model.text.out=8", "train.epochs=1",
        "train.batch_size=4", "train.progress=false", "data.max_tokens=8"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("launch")
    write_cosmic(base / "manual")
    return [f"data.data_dir={base / 'tfds'}", f"data.manual_dir={base / 'manual'}"]


@pytest.mark.parametrize("kwargs, message", [
    ({"launcher": "pbs"}, "--launcher 'pbs'"),
    ({"jobs": -1}, "--jobs"),
    ({"timeout_min": 0}, "--timeout-min"),
])
def test_bad_options_are_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        LaunchOptions(**kwargs)


def test_a_failed_job_names_its_run_its_error_and_its_log(corpus, tmp_path):
    """A job that fails in its own process is reported with its run directory, the job's own
    error line and its log file; the corpus is prepared once, before any job starts."""
    pytest.importorskip("submitit")
    from mmer_jax import config as config_lib

    cfg = config_lib.load("experiments/text_cnn_iemocap_text.py", corpus + TINY)
    cfg.model.name = "no_such_system"  # passes the parent, fails inside the job
    run_dir = str(tmp_path / "seed0")
    with pytest.raises(RunError, match=r"seed0: job \S+ failed: .*no_such_system.*\(log: .*\.err\)"
                       ) as info:
        run_jobs([(cfg, run_dir)], LaunchOptions("local"), str(tmp_path / "jobs"))
    assert "run the command again to resume" in str(info.value)


@pytest.mark.slow
def test_local_jobs_give_the_inline_report_and_resume(corpus, tmp_path, capsys):
    """Two seeds as two local processes: the report holds both seeds with the same numbers as an
    inline run of the same config (same seeds, same data), and a second call reads them back."""
    pytest.importorskip("submitit")
    from mmer_jax.reproduce.harness import reproduce

    def report(work, launch):
        paths = reproduce("text_cnn", corpus="iemocap_text", seeds=2, workdir=str(work),
                          out_dir=str(work / "out"), overrides=corpus + TINY, launch=launch)
        return json.load(open(paths["iemocap_text"]["json"]))

    jobs = report(tmp_path / "jobs", LaunchOptions("local", jobs=2))
    logs = os.listdir(tmp_path / "jobs" / "text_cnn" / "iemocap_text" / "jobs")
    assert any(name.endswith("_log.err") for name in logs)  # ran as submitit jobs
    inline = report(tmp_path / "inline", None)
    assert [r["seed"] for r in jobs["runs"]] == [0, 1]
    for a, b in zip(jobs["runs"], inline["runs"], strict=True):
        assert a["test"] == pytest.approx(b["test"], abs=1e-6)
    capsys.readouterr()
    again = report(tmp_path / "jobs", LaunchOptions("local", jobs=2))
    assert "finished earlier, read back" in capsys.readouterr().err
    assert again["runs"] == jobs["runs"]
