"""k-fold protocols as views over one build (``data.fold``), and the split text derived from what
was read (fault: a stale declared split in results)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data_prep"))
import fixtures_av as fx  # noqa: E402

from data_prep.build import build  # noqa: E402
from data_prep.emodb import emodb  # noqa: E402
from mmer_jax.data.pipeline import make_pipeline  # noqa: E402
from mmer_jax.errors import UsageError  # noqa: E402
from mmer_jax.schema import DataConfig  # noqa: E402


@pytest.fixture(scope="module")
def emodb_fixture(tmp_path_factory):
    """10 speakers x 2 utterances (EmoDB layout) and one EmoBox fold file pair, built once."""
    root = tmp_path_factory.mktemp("emodb")
    stems = []
    for i, spk in enumerate(emodb.SPEAKERS):
        for j in range(2):
            stem = f"{spk}a0{j + 1}{'WLEAFTN'[(i + j) % 7]}a"
            fx.write_wav(root / "wav" / f"{stem}.wav", 0.05, 16000, freq=200 + 10 * i)
            stems.append(stem)
    (root / "emobox_folds").mkdir()
    test = set(stems[::4])
    for part, chosen in (("train", [s for s in stems if s not in test]), ("test", sorted(test))):
        with open(root / "emobox_folds" / f"emodb_{part}_fold_1.jsonl", "w") as f:
            for s in chosen:
                f.write(json.dumps({"key": f"emodb-{s}", "wav": f"x/wav/{s}.wav"}) + "\n")
    data_dir = tmp_path_factory.mktemp("tfds")
    build("emodb", "default", str(data_dir), str(root))
    return root, data_dir


def _pipeline(root, data_dir, **kw):
    data = DataConfig(corpus="emodb", data_dir=str(data_dir), manual_dir=str(root),
                      read_threads=0, **kw)
    return make_pipeline(data, ["audio"], seed=0)


def _ids(p):
    return {s: sorted(ex["id"].decode() for ex in (src[i] for i in range(len(src))))
            for s, src in p.sources.items()}


@pytest.mark.parametrize("protocol, config", [("lso", "lso_fold3"), ("emobox", "emobox_fold1")])
def test_per_fold_config_is_an_alias_of_the_view_over_one_build(emodb_fixture, protocol, config):
    root, data_dir = emodb_fixture
    k = int(config[-1])
    view = _pipeline(root, data_dir, config="default", fold=k, fold_protocol=protocol)
    assert view.builder.builder_config.name == "default"  # read from the one build
    alias = _pipeline(root, data_dir, config=config)
    assert alias.builder.builder_config.name == "default"  # no build of its own
    assert _ids(view) == _ids(alias)
    assert alias.fold["protocol"] == protocol and alias.fold["fold"] == k
    assert view.fold["protocol"] == protocol and view.fold["num_folds"] == (5 if k == 3 else 1)
    assert [p.name for p in (data_dir / "emodb").iterdir() if not p.name.startswith(".")] == [
        "default"]


def test_split_text_is_derived_from_config_and_speakers_read(emodb_fixture):
    root, data_dir = emodb_fixture
    alias = _pipeline(root, data_dir, config="lso_fold3")
    assert alias.split_speakers["test"] == ["11", "12"]
    assert alias.split_description.startswith("emodb/default, lso fold 3 of 5 (")
    assert alias.split_description.endswith(
        "speakers 6/2/2 (train 03 08 09 10 15 16; validation 13 14; test 11 12)")
    view = _pipeline(root, data_dir, config="default", fold=3)  # "lso" is the default protocol
    assert view.split_description == alias.split_description
    fixed = _pipeline(root, data_dir, config="default")
    assert fixed.split_description.endswith("(train 03 08 09 10 11 14; validation 12 13; "
                                            "test 15 16)")


def test_alias_and_another_fold_is_a_usage_error(emodb_fixture):
    root, data_dir = emodb_fixture
    with pytest.raises(UsageError, match="'lso_fold3' is fold 3 of protocol 'lso'"):
        _pipeline(root, data_dir, config="lso_fold3", fold=2)


def test_unknown_fold_or_protocol_is_a_usage_error_naming_what_exists(emodb_fixture):
    root, data_dir = emodb_fixture
    with pytest.raises(UsageError, match="must be in 1..5"):
        _pipeline(root, data_dir, config="default", fold=6)
    with pytest.raises(UsageError, match="it has emobox, lso"):
        _pipeline(root, data_dir, config="default", fold=1, fold_protocol="loso")


def test_every_alias_names_a_config_of_its_builder_and_a_fold_it_has():
    from data_prep import folds
    from data_prep.build import builder_class
    from data_prep.crema_d import crema_d
    from data_prep.ravdess import ravdess

    num_folds = {"ravdess": ravdess.NUM_FOLDS, "crema_d": crema_d.NUM_FOLDS,
                 "emodb": emodb.NUM_FOLDS}
    for corpus, aliases in folds.FOLD_ALIASES.items():
        configs = {c.name for c in builder_class(corpus).BUILDER_CONFIGS}
        for prefix, (base, _, k) in aliases.items():
            assert base in configs and f"{prefix}1" not in configs and k == num_folds[corpus]
    assert folds.resolve_alias("ravdess", "av_fold6") == ("av", "actors", 6)
    assert folds.resolve_alias("ravdess", "av_fold7") is None  # no such fold: not an alias
    assert folds.resolve_alias("crema_d", "speech_fold1") is None
