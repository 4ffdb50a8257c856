"""The command line a researcher expects (issue 17): every bad value named before anything is
written, discoverable names and help, data directories in one order, one process per workdir,
quiet logs. Each test runs in seconds: none trains."""

import json
import logging
import os
import re

import pytest

from mmer_jax import cli
from mmer_jax import config as config_lib
from mmer_jax.errors import UsageError

QS = "experiments/quickstart.py"
EMODB = "experiments/emodb_speech.py"
SELECT = ("'accuracy', 'weighted_f1', 'macro_f1', 'uar', 'acc2_has0', 'f1_has0', 'acc2_non0', "
          "'f1_non0', 'acc3', 'acc5', 'acc7', 'mae', 'corr'")


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.select_metric=uar2",
         f"config key 'train.select_metric' must be one of {SELECT}, got 'uar2'"),
        ("train.dtype=fp16", "config key 'train.dtype' must be one of 'float32', 'bfloat16', "
                             "got 'fp16'"),
        ("model.dropout=None", "config key 'model.dropout' expects float, got None"),
        ("train.epochs=2.5", "config key 'train.epochs' expects int, got '2.5'"),
        ("train.epochs=None", "config key 'train.epochs' expects int, got None"),
        ("train.optimizer=adamm",
         "config key 'train.optimizer' must be one of 'adamw', 'adam', 'sgd', got 'adamm'"),
        ("train.lr=-1", "config key 'train.lr': lr=-1.0 must be > 0"),
        ("train.lrr=1", "unknown config key 'train.lrr'; did you mean 'train.lr'?"),
        ("seed=None", "config key 'seed' expects int, got None"),
        ("seed=true", "config key 'seed' expects int, got True"),
        ("variants.fused=audio", "config key 'variants.fused' expects list, got 'audio'"),
        ("variants.fused=[]",
         "config key 'variants.fused' expects a non-empty list of modality names, got []"),
        # "generated" itself is an accepted spelling (config.CORPUS_ALIASES); a near miss is not.
        ("data.corpus=generated_emotin",
         "config key 'data.corpus': unknown corpus 'generated_emotin'; did you mean "
         "'generated_emotion'? (known: {corpora}; see `mmer list`)"),
        ("model.name=s03",
         "config key 'model.name': unknown system 's03'; did you mean 's003'? (known: "
         "{systems}; see `mmer list`)"),
    ],
)
def test_bad_value_is_named_before_anything_runs(override, message):
    from data_prep import CORPORA
    from mmer_jax.registry import SYSTEMS

    with pytest.raises(UsageError) as exc:
        config_lib.load(QS, [override])
    assert str(exc.value) == message.format(corpora=", ".join(CORPORA.names()),
                                            systems=", ".join(SYSTEMS.names()))


def test_bad_data_paths_are_worded_for_train(tmp_path, capsys):
    """Inside `train`, a data path is a config key, not a `data build` flag; nothing is written."""
    tfds = str(tmp_path / "tfds")  # emodb is not prepared here
    empty = tmp_path / "empty"
    empty.mkdir()
    how = ("set --config.data.manual_dir=DIR, $MMER_EMODB, or $MMER_DATA_ROOT to a folder "
           "holding emodb/ (Download EmoDB (http://emodb.bilderbar.info/download/, free for "
           "research) and pass the folder containing `wav/` (or `wav/` itself) as "
           "data.manual_dir. For the emobox_fold* configs, put EmoBox's "
           "`emodb_{train,test}_fold_K.jsonl` files in `emobox_folds/` next to `wav/`.)")
    cases = [
        (str(tmp_path / "nope"),
         f"config key 'data.manual_dir': {str(tmp_path / 'nope')!r} is not a directory; {how}"),
        (str(empty), f"config key 'data.manual_dir': {str(empty)!r} is empty; {how}"),
    ]
    for manual, message in cases:
        work = tmp_path / "w"
        code = cli.main(["train", "--config", EMODB, "--workdir", str(work), "--data_dir", tfds,
                         f"--config.data.manual_dir={manual}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert err[-1] == f"mmer: error: {message}"
        assert "--manual_dir" not in err[-1]
        assert err[0].startswith(f"[run] data: emodb/default in {tfds} (from --data_dir)")
        assert not work.exists()  # a failed start leaves no workdir behind


def test_unknown_builder_config_is_a_config_key_error(tmp_path):
    cfg = config_lib.load(QS, ["data.config=tinyy", f"data.data_dir={tmp_path}"])
    with pytest.raises(UsageError, match=r"^config key 'data.config': corpus 'generated_emotion' "
                                         r"has no config 'tinyy'; configs: default, tiny, large"):
        config_lib.check_data(cfg.data)


def test_failed_start_writes_nothing_and_the_corrected_command_runs(
    tmp_path, monkeypatch, tiny_generated
):
    """A start failing once the data is open (here: the model build) leaves the fresh workdir
    as it found it (absent): config.json is written only after the data and models."""
    import mmer_jax.models as models
    from mmer_jax.train import run as run_lib

    def refuse(*a, **k):
        raise UsageError("config section 'model' (quickstart): refused by the test")

    monkeypatch.setattr(models, "build_model", refuse)
    cfg = config_lib.load(QS, ["data.config=tiny", "train.progress=false"])
    work = tmp_path / "w"
    with pytest.raises(UsageError, match="refused by the test"):
        run_lib.run(cfg, str(work), data_dir=tiny_generated)
    assert not work.exists()
    # An existing (empty) workdir is kept, and nothing of the failed start is left in it (not
    # even its lock file).
    work.mkdir()
    with pytest.raises(UsageError, match="refused by the test"):
        run_lib.run(cfg, str(work), data_dir=tiny_generated)
    assert sorted(os.listdir(work)) == []


def test_a_different_run_is_refused_until_force(tmp_path):
    from mmer_jax.train import run as run_lib

    work = tmp_path / "w"
    old = config_lib.load(QS, ["train.lr=0.5"])
    run_lib.prepare_workdir(str(work), old)
    (work / "variants").mkdir()
    (work / "notes.txt").write_text("mine")
    new = config_lib.load(QS)
    with pytest.raises(UsageError) as exc:
        run_lib.check_workdir(str(work), new)
    assert str(exc.value) == (
        f"--workdir {str(work)!r} holds a run of a different config (key 'train.lr': 0.5 vs "
        "0.001); use a new --workdir, or --force to delete that run and start afresh"
    )
    # A moved data directory is not a different run.
    moved = config_lib.load(QS, ["train.lr=0.5", "data.data_dir=/elsewhere"])
    assert run_lib.check_workdir(str(work), moved) is True
    assert sorted(run_lib.clear_run(str(work))) == ["config.json", "variants"]
    assert os.listdir(work) == ["notes.txt"]  # --force removes run files only
    assert run_lib.check_workdir(str(work), new) is False


def test_second_process_on_a_workdir_is_refused(tmp_path):
    from mmer_jax.train.run import WorkdirLock

    with WorkdirLock(str(tmp_path)):
        with pytest.raises(UsageError) as exc:
            WorkdirLock(str(tmp_path)).__enter__()  # flock: a second open file description
        assert str(exc.value) == (
            f"--workdir {str(tmp_path)!r} is in use by another mmer process (pid {os.getpid()}, "
            f"lock {tmp_path / '.lock'}); wait for it to end or use another --workdir"
        )
    with WorkdirLock(str(tmp_path)):  # released: the next run may start
        pass


def test_print_config_prints_the_resolved_config_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMER_DATA_DIR", str(tmp_path / "d"))
    code = cli.main(["train", "--config", os.path.join(config_lib_repo(), QS), "--print-config",
                     "--config.train.lr=0.5"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["train"]["lr"] == 0.5 and out["data"]["data_dir"] == str(tmp_path / "d")
    assert os.listdir(tmp_path) == []
    code = cli.main(["train", "--config", os.path.join(config_lib_repo(), QS)])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "mmer: error: mmer train needs --workdir DIR (or --print-config)"
    )


def config_lib_repo():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_data_dir_order_flag_config_environment_default(monkeypatch):
    monkeypatch.delenv("MMER_DATA_DIR", raising=False)
    home = os.path.expanduser("~/tensorflow_datasets")
    assert config_lib.resolve_data_dir(None) == (home, "default")
    assert config_lib.resolve_data_dir("~/tensorflow_datasets") == (home, "default")
    monkeypatch.setenv("MMER_DATA_DIR", "/env")
    assert config_lib.resolve_data_dir("~/tensorflow_datasets") == ("/env", "$MMER_DATA_DIR")
    assert config_lib.resolve_data_dir("/cfg") == ("/cfg", "config")
    assert config_lib.resolve_data_dir("/cfg", "/flag") == ("/flag", "--data_dir")


def test_manual_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv("MMER_EMODB", raising=False)
    monkeypatch.setenv("MMER_DATA_ROOT", str(tmp_path))
    assert config_lib.resolve_manual_dir("emodb") == ("", "none")
    (tmp_path / "emodb").mkdir()
    assert config_lib.resolve_manual_dir("emodb") == (str(tmp_path / "emodb"),
                                                      "$MMER_DATA_ROOT/emodb")
    monkeypatch.setenv("MMER_EMODB", "/env")
    assert config_lib.resolve_manual_dir("emodb") == ("/env", "$MMER_EMODB")
    assert config_lib.resolve_manual_dir("emodb", "/cfg") == ("/cfg", "config")
    assert config_lib.resolve_manual_dir("emodb", "/cfg", "/flag") == ("/flag", "--manual_dir")


def test_every_subcommand_documents_overrides_and_examples():
    import argparse

    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("train", "reproduce", "bench"):
        text = sub.choices[name].format_help()
        assert "--config.KEY=VALUE" in text and "examples:" in text, name
    # eval reads the run's config.json: its help offers neither overrides nor --data_dir
    # (which it rejects), and shows its --split default (issue 33).
    text = sub.choices["eval"].format_help()
    assert "--config." not in text and "--data_dir" not in text and "examples:" in text
    assert "(default: test)" in text and "(default: None)" not in text
    assert "(default: 3)" in sub.choices["reproduce"].format_help()
    data = next(a for a in sub.choices["data"]._actions
                if isinstance(a, argparse._SubParsersAction))
    assert "examples:" in data.choices["build"].format_help()
    for name in ("list", "compare"):
        assert "examples:" in sub.choices[name].format_help()


def _all_parsers(parser, path=("mmer",)):
    import argparse

    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _all_parsers(child, (*path, name))


def test_help_offers_overrides_only_where_accepted_and_shows_defaults_once(capsys):
    """`mmer data build --help` offered --config.KEY=VALUE, which the command rejects, and
    `mmer bench --help` said "(default: benchmarks/results/...) (default: None)"."""
    parsers = dict(_all_parsers(cli._parser()))
    help_of = {name: p.format_help() for name, p in parsers.items()}
    assert "--config.KEY" not in help_of["mmer data build"]
    assert cli.main(["data", "build", "generated", "--config.data.config=tiny"]) == 2
    assert "only valid with train, reproduce or bench" in capsys.readouterr().err
    for name, text in help_of.items():
        assert "(default: None)" not in text, name
        for line in text.split("options:", 1)[-1].splitlines():
            assert line.count("default") <= 1, (name, line)
    assert "  --out OUT             result JSON (default: benchmarks/results/...)\n" in help_of[
        "mmer bench"]


def test_mmer_list_shows_systems_corpora_configs_and_experiments(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    # The name column is as wide as the longest system name.
    assert re.search(r"\n  s003 +reproduce --corpus: crema_d, emodb, generated, meld", out)
    assert "  generated_emotion  generated; configs: default, tiny, large" in out
    assert "configs: a JSON spec (data.config=PATH), bundled: turev_db\n" in out  # folder
    assert "emodb              from manual_dir ($MMER_EMODB or $MMER_DATA_ROOT/emodb)" in out
    assert "experiments/quickstart.py" in out


def test_reproduce_names_any_case_and_near_misses():
    from mmer_jax.reproduce import harness

    assert harness.system_name("S003") == "s003"
    with pytest.raises(UsageError) as exc:
        harness.find_configs("s03")
    assert str(exc.value).startswith(
        "no experiments/s03_<corpus>.py config for system 's03'; did you mean 's003'?"
    )
    with pytest.raises(UsageError, match="did you mean 'generated'"):
        harness.find_configs("s003", "generated_emotion")


def test_reproduce_protects_the_reference_reports(tmp_path):
    from mmer_jax.reproduce import harness

    with pytest.raises(UsageError) as exc:
        harness.reproduce("s003", corpus="generated", seeds=1, update_reference=True,
                          overrides=["train.epochs=2"])
    assert str(exc.value) == (
        "--update-reference refuses --config.* overrides (got --config.train.epochs=2): the "
        "reference reports are the configs as committed"
    )
    with pytest.raises(UsageError, match="is the committed reference directory"):
        harness.reproduce("s003", corpus="generated", seeds=1, out_dir=harness.REFERENCE_DIR)


def test_progress_bars_only_on_a_terminal(monkeypatch):
    import io

    from mmer_jax.train import progress

    monkeypatch.delenv("MMER_PROGRESS", raising=False)
    assert progress.on_terminal(io.StringIO()) is False
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress.progress_bar(10, 0, "x", True).disable
    monkeypatch.setenv("MMER_PROGRESS", "1")
    assert progress.on_terminal(io.StringIO()) is True


def test_build_skips_become_one_summary_line(capsys, tmp_path):
    from data_prep.build import _SkipSummary

    class Builder:
        data_dir = str(tmp_path)

    log = logging.getLogger("data_prep")
    with _SkipSummary() as skips:
        for i in range(535):
            log.warning("skipping %s (%s): %s", f"f{i}.wav", "train", "unparsable name")
        log.warning("something else")
    skips.summarize(Builder())
    err = capsys.readouterr().err
    assert err.count("[data]") == 1 and skips.count == 535
    assert (f"[data] 535 files skipped (first: skipping f0.wav (train): unparsable name); every "
            f"file and reason in {tmp_path / 'build_report.json'}") in err


def test_best_epoch_is_numeric_also_for_old_results():
    from mmer_jax.train.run import best_epoch

    assert best_epoch({"best_epoch": 4, "selection": "x"}) == 4
    assert best_epoch({"selection": "best validation weighted_f1 @ epoch 13"}) == 13
    assert best_epoch({"selection": "?"}) is None


def test_compare_prints_runs_side_by_side(tmp_path, capsys):
    for name, acc in (("a", 0.5), ("b", 0.75)):
        d = tmp_path / name
        d.mkdir()
        (d / "results.json").write_text(json.dumps({
            "system": "quickstart", "corpus": "generated_emotion", "variant": "fused",
            **({"fusion": "bridge"} if name == "b" else {}),
            "modalities": ["audio"], "test": {"accuracy": acc, "weighted_f1": acc, "uar": acc},
            "protocol": {"seed": 0, "corpus_config": "tiny",
                         "selection": "best validation weighted_f1 @ epoch 2"},
            "timing": {"train_examples_per_s": 100.0},
        }))
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert (f"| {tmp_path / 'b'} | quickstart (bridge) | fused * | generated_emotion/tiny | 0 | "
            "75.0 | 75.0 | 75.0 | 2 |") in out
    assert f"| {tmp_path / 'a'} | quickstart | fused * |" in out
    assert cli.main(["compare", str(tmp_path)]) == 2
    assert "holds no results.json" in capsys.readouterr().err


def test_serving_help_shows_each_default_once_and_none_for_required_options(capsys):
    for command in ("predict", "serve"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = capsys.readouterr().out
        workdir = next(line for line in out.splitlines() if "--workdir WORKDIR " in line)
        assert "default" not in workdir  # required: nothing to default to
        variant = next(line for line in out.splitlines() if "--variant VARIANT " in line)
        assert variant.count("default") == 1
    assert "--port PORT" in out and "(default: 8000)" in out


def test_reproduce_that_runs_nothing_fails_and_quickstart_has_its_generated_config(
    tmp_path, monkeypatch, capsys
):
    """`mmer reproduce quickstart` skipped both corpora it had configs for and exited 0 having
    done nothing (issue 33): it now finds the generated-corpus quickstart, and a reproduction
    whose every corpus is unavailable exits 2 saying it ran nothing."""
    from mmer_jax.reproduce import harness

    assert set(harness.find_configs("quickstart")) >= {"generated", "cmu_mosi", "cmu_mosei"}
    for var in ("MMER_DATA_ROOT", "MMER_IEMOCAP_TEXT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MMER_DATA_DIR", str(tmp_path / "tfds"))
    code = cli.main(["reproduce", "text_cnn", "--seeds", "1", "--workdir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert any(line.startswith("[reproduce] skipping text_cnn/iemocap_text: ") for line in err)
    assert err[-1] == (
        "mmer: error: mmer reproduce text_cnn ran nothing: the data of every corpus it has a "
        "config for is unavailable (iemocap_text; why, above); make one available or name it "
        "with --corpus to see what it needs")
