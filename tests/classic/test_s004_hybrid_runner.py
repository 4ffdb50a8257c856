"""The S004 hybrid runner's configs and its refusal when the encoder runs are missing (the
end-to-end fit is exercised by the committed report, ``reproductions/s004_hybrid/``)."""

from experiments import s004_hybrid
from experiments.s004_hybrid_generated import get_hybrid_config as generated_config
from experiments.s004_hybrid_meld import get_hybrid_config as meld_config


def test_meld_uses_the_generated_settings_on_its_own_corpus():
    gen, meld = generated_config().to_dict(), meld_config().to_dict()
    assert meld.pop("corpus") == "meld" and gen.pop("corpus") == "generated"
    assert meld == gen
    assert gen["context"] in s004_hybrid.CONTEXTS


def test_missing_encoder_runs_are_named_before_anything_is_written(tmp_path, capsys):
    code = s004_hybrid.main(["--corpus", "meld", "--seeds", "2", "--workdir", str(tmp_path),
                             "--out", str(tmp_path / "reports")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    for system in ("s004_speech", "s004_face"):
        for k in (0, 1):
            assert str(tmp_path / system / "meld" / f"seed{k}") in err
    assert f"mmer reproduce s004_speech --corpus meld --seeds 2 --workdir {tmp_path}" in err
    assert not (tmp_path / "reports").exists() and not (tmp_path / "features").exists()


def test_an_unknown_corpus_or_no_seed_is_a_one_line_usage_error(capsys):
    import pytest

    for argv, message in ((["--corpus", "emodb"], "corpora: generated, meld"),
                          (["--seeds", "0"], "--seeds 0: at least 1")):
        with pytest.raises(SystemExit) as exc:
            s004_hybrid.main(argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
