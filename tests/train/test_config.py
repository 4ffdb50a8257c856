import pytest

from mmer_jax import config as config_lib
from mmer_jax.errors import UsageError

QS = "experiments/quickstart.py"


def test_override_sets_typed_values():
    cfg = config_lib.load(
        QS, ["train.lr=1e-3", "train.epochs=3", "train.progress=false", "data.config=tiny"]
    )
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.epochs == 3 and cfg.train.progress is False and cfg.data.config == "tiny"


def test_int_to_float_is_accepted():
    cfg = config_lib.load(QS, ["train.lr=1"])
    assert isinstance(cfg.train.lr, float)


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.lrr=1e-3", "unknown config key 'train.lrr'"),
        ("trian.lr=1e-3", "unknown config key 'trian'"),
        ("train.lr=fast", "expects float"),
        ("train.progress=3", "expects true/false"),
        ("train.epochs=0", "'train.epochs': epochs=0 must be > 0"),
        ("train.lr", "--config.KEY=VALUE"),
    ],
)
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(".", r"\.")):
        config_lib.load(QS, [override])


def test_missing_and_broken_config_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        config_lib.load(str(tmp_path / "nope.py"))
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    with pytest.raises(UsageError, match="broken.py.*failed to load"):
        config_lib.load(str(broken))
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(UsageError, match="defines no get_config"):
        config_lib.load(str(empty))
    # a runner's settings file points at its runner
    runner = tmp_path / "runner_settings.py"
    runner.write_text('"""Settings.\n\n    python -m tools.runner --corpus meld\n"""\nx = 1\n')
    with pytest.raises(UsageError, match=r"no trained system; run it as its docstring says: "
                                         r"`python -m tools.runner --corpus meld"):
        config_lib.load(str(runner))
