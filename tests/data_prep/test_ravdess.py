"""RAVDESS builder on a synthetic corpus in the real layout (48 kHz wavs, H.264+AAC mp4s)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep.ravdess import ravdess  # noqa: E402

AV_ACTORS = (1, 2, 14, 17, 18, 21, 22)  # enough for the fixed split and av_fold4


def emotions_of(actor: int) -> list[int]:
    return [actor % 8 + 1, (actor + 2) % 8 + 1, (actor + 5) % 8 + 1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ravdess")
    speech = root / "Audio_Speech_Actors_01-24"
    for a in range(1, 25):
        for k, emo in enumerate(emotions_of(a)):
            name = f"03-01-{emo:02d}-{k % 2 + 1:02d}-{(a + k) % 2 + 1:02d}-01-{a:02d}.wav"
            fx.write_wav(speech / f"Actor_{a:02d}" / name, 0.1, 48000, freq=150 + 5 * a)
    fx.write_wav(speech / "Actor_01" / "03-02-03-01-01-01-01.wav", 0.1, 48000)  # song: excluded
    bad = {"03-01-01-01-01-02-01.wav": fx.write_zero_length,
           "03-01-02-01-01-02-02.wav": fx.write_corrupt,
           "03-01-03-01-01-02-03.wav": lambda p: fx.write_truncated_wav(p, 0.2, 48000),
           "03-01-09-01-01-01-04.wav": lambda p: fx.write_wav(p, 0.1, 48000),  # emotion 09
           "hello.wav": lambda p: fx.write_wav(p, 0.1, 48000)}
    for name, make in bad.items():
        actor = name[-6:-4] if name[0].isdigit() else "05"
        make(speech / f"Actor_{actor}" / name)
    fx.write_wav(speech / "Actor_06" / "03-01-01-01-01-01-07.wav", 0.1, 48000)  # wrong folder
    for a in AV_ACTORS:
        fx.write_mp4(root / f"Actor_{a:02d}" / f"01-01-05-02-01-01-{a:02d}.mp4", seconds=0.5,
                     fps=10, size=(90, 160), face=a % 2 == 0)
    fx.write_mp4(root / "Actor_01" / "02-01-05-02-01-01-01.mp4", seconds=0.2, fps=5)  # video only
    return root, bad


def test_parse_name():
    m = ravdess.parse_name("03-01-06-02-01-02-13")
    assert m == {"modality": 3, "channel": 1, "label": "fearful", "intensity": "strong",
                 "statement": "kids", "repetition": 2, "speaker": "13", "gender": "male"}
    assert ravdess.parse_name("03-01-09-01-01-01-01") is None
    assert ravdess.parse_name("03-01-01-01-01-01-25") is None


def test_speech(corpus, tmp_path):
    root, bad = corpus
    _, ex, rep = fx.build_and_read("ravdess", "speech", tmp_path, root)
    assert {s: len(v) for s, v in ex.items()} == {"train": 48, "validation": 12, "test": 12}
    assert fx.speakers_by_split(ex) == ravdess.FIXED_SPLIT
    e = next(x for x in ex["test"] if fx.text(x["id"]) == "03-01-01-01-01-01-24")
    assert fx.text(e["speaker"]) == "24" and fx.text(e["gender"]) == "female"
    assert ravdess.EMOTIONS[e["label"]] == "neutral" == ravdess.EMOTIONS[emotions_of(24)[0] - 1]
    assert e["audio"].dtype == np.int16 and e["audio"].shape == (1600,)
    assert int(e["repetition"]) == 1
    assert rep["resampled_examples"] == 72
    assert rep["splits"]["test"]["orig_sample_rates"] == {"48000": 12}
    assert rep["notes"]["excluded_not_in_config"] == 1  # the song file
    reasons = {Path(s["path"]).name: s["reason"] for v in rep["skipped"].values() for s in v}
    assert set(reasons) == set(bad) | {"03-01-01-01-01-01-07.wav"}
    assert "zero-length" in reasons["03-01-01-01-01-02-01.wav"]
    assert "unreadable" in reasons["03-01-02-01-01-02-02.wav"]
    assert "truncated" in reasons["03-01-03-01-01-02-03.wav"]
    assert "does not match" in reasons["hello.wav"]
    assert "folder Actor_06" in reasons["03-01-01-01-01-01-07.wav"]


def test_speech6(corpus, tmp_path):
    root, _ = corpus
    _, ex, rep = fx.build_and_read("ravdess", "speech6", tmp_path, root)
    want = sum(ravdess.EMOTIONS[e - 1] in ravdess.SIX for a in range(1, 25) for e in emotions_of(a))
    assert sum(len(v) for v in ex.values()) == want
    # + the song file + the corrupt calm file (filtered by class before it is ever decoded)
    assert rep["notes"]["excluded_not_in_config"] == 72 - want + 2
    assert all(0 <= e["label"] < 6 for v in ex.values() for e in v)
    fx.assert_speaker_disjoint(ex)


@pytest.mark.parametrize("fold", [1, 6])
def test_speech_folds(corpus, tmp_path, fold):
    root, _ = corpus
    _, ex, _ = fx.build_and_read("ravdess", f"speech_fold{fold}", tmp_path, root)
    by = fx.speakers_by_split(ex)
    first = 4 * (fold - 1) + 1
    assert by["test"] == {f"{a:02d}" for a in range(first, first + 4)}
    nxt = 4 * (fold % 6) + 1
    assert by["validation"] == {f"{a:02d}" for a in range(nxt, nxt + 4)}
    assert len(by["train"]) == 16
    fx.assert_speaker_disjoint(ex)


def test_all_fold_configs_are_speaker_independent():
    for k in range(1, 7):
        s = ravdess.speaker_splits(k)
        assert sum(len(v) for v in s.values()) == 24
        assert not (s["train"] & s["test"]) and not (s["validation"] & s["test"])


@pytest.mark.parametrize("config", ["av", "av_fold4"])
def test_av(corpus, tmp_path, config):
    root, _ = corpus
    builder, ex, rep = fx.build_and_read("ravdess", config, tmp_path, root)
    assert sum(len(v) for v in ex.values()) == len(AV_ACTORS)
    fx.assert_speaker_disjoint(ex)
    if config == "av_fold4":
        assert fx.speakers_by_split(ex)["test"] == {"14"}
    for e in (e for v in ex.values() for e in v):
        assert e["frames"].shape == (16, 64, 64, 3) and e["face"].shape == (16, 64, 64, 3)
        assert abs(e["audio"].size - 8000) < 1600  # 0.5 s of AAC at 16 kHz
        has_face = int(fx.text(e["speaker"])) % 2 == 0
        assert (e["face_found"] > 0.5) if has_face else (e["face_found"] == 0.0)
    assert rep["notes"]["excluded_not_in_config"] == 1  # the video-only file
    assert rep["resampled_examples"] == len(AV_ACTORS)
    if config == "av":  # EmoBox lists audio-only files: each maps to the clip of its recording
        from data_prep import folds

        ids = sorted(fx.text(e["id"]) for v in ex.values() for e in v)
        audio_only = ["03" + i[2:] for i in ids]
        write_emobox(tmp_path / "EmoBox", "ravdess",
                     {1: {"train": audio_only[2:], "test": audio_only[:2]}}, wav_of=_ravdess_wav)
        emobox = folds.emobox_protocol(builder.data_dir, tmp_path / "EmoBox", "ravdess")
        assert "errors" not in emobox and emobox["folds"][0]["test"] == ids[:2]


def test_empty_split_is_hard_error(tmp_path):
    from data_prep._common.report import CorpusError

    fx.write_wav(tmp_path / "m" / "Actor_01" / "03-01-01-01-01-01-01.wav", 0.1, 48000)
    with pytest.raises(CorpusError, match=f"'validation' under {tmp_path / 'm'}"):
        fx.build_and_read("ravdess", "speech", tmp_path / "out", tmp_path / "m")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("x")
    with pytest.raises(CorpusError, match="no 03-01-"):
        fx.build_and_read("ravdess", "speech", tmp_path / "out", tmp_path / "none")


def _ids(examples) -> dict[str, set[str]]:
    return {s: {fx.text(e["id"]) for e in v} for s, v in examples.items()}


def old_fold_ids(stored, fold: int) -> dict[str, set[str]]:
    """The ids the per-fold build ``speech_fold<fold>`` stored in each split before 1.1.0: every
    stored example (the skips never depended on the fold), split by that config's actor rule."""
    actors = ravdess.speaker_splits(fold)
    return {s: {fx.text(e["id"]) for e in stored if fx.text(e["speaker"]) in a}
            for s, a in actors.items()}


def test_fold_views_give_the_ids_of_the_old_per_fold_builds(corpus, tmp_path):
    from data_prep import folds

    root, _ = corpus
    builder, ex, _ = fx.build_and_read("ravdess", "speech", tmp_path, root)
    stored = [e for v in ex.values() for e in v]
    assert folds.protocols_of(builder.data_dir) == {"actors": 6}
    for k in range(1, 7):
        view = folds.fold_view(builder.data_dir, k, "actors")
        assert view["ids"] == old_fold_ids(stored, k) and view["speaker_independent"]
        _, alias, _ = fx.build_and_read("ravdess", f"speech_fold{k}", tmp_path, root)
        assert _ids(alias) == view["ids"]
    # Six folds, one build: the aliases made no build of their own.
    assert [p.name for p in (tmp_path / "ravdess").iterdir() if p.name[0] != "."] == ["speech"]


def write_emobox(root: Path, name: str, folds: dict[int, dict[str, list[str]]],
                 wav_of=lambda stem: f"{stem}.wav", key_of=lambda stem: stem) -> Path:
    """EmoBox's own layout and line format under ``root``:
    ``data/<name>/fold_K/<name>_<part>_fold_K.jsonl``, one JSON object per line."""
    import json

    for k, parts in folds.items():
        d = root / "data" / name / f"fold_{k}"
        d.mkdir(parents=True, exist_ok=True)
        for part, stems in parts.items():
            with open(d / f"{name}_{part}_fold_{k}.jsonl", "w") as f:
                for s in stems:
                    f.write(json.dumps({"key": f"{name}-{key_of(s)}", "dataset": name,
                                        "wav": f"downloads/{name}/{wav_of(s)}", "type": "raw",
                                        "sample_rate": 48000, "task": "category",
                                        "emo": "Neutral", "channel": 1}) + "\n")
    return root


def _ravdess_wav(stem: str) -> str:
    return f"audio/Audio_Speech_Actors_01-24/Actor_{stem[-2:]}/{stem}.wav"


def _emobox_data(root, tmp_path, **kw):
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.schema import DataConfig

    data = DataConfig(corpus="ravdess", config="speech", data_dir=str(tmp_path),
                      manual_dir=str(root), read_threads=0, fold_protocol="emobox",
                      emobox_dir=str(tmp_path / "EmoBox"), **kw)
    return make_pipeline(data, ["audio"], seed=0)


def test_emobox_folds_read_from_emobox_files(corpus, tmp_path):
    from data_prep._common.speakers import carve

    root, _ = corpus
    _, ex, _ = fx.build_and_read("ravdess", "speech", tmp_path, root)
    stems = sorted(fx.text(e["id"]) for v in ex.values() for e in v)
    halves = ([s for s in stems if int(s[-2:]) <= 12], [s for s in stems if int(s[-2:]) > 12])
    write_emobox(tmp_path / "EmoBox", "ravdess",
                 {1: {"train": halves[1], "test": halves[0]},
                  2: {"train": halves[0], "test": halves[1]}}, wav_of=_ravdess_wav)
    p = _emobox_data(root, tmp_path, fold=2)
    got = {s: sorted(fx.text(src[i]["id"]) for i in range(len(src)))
           for s, src in p.sources.items()}
    assert got["test"] == halves[1]
    val = sorted(carve(halves[0], 0.1, salt="ravdess-emobox-2"))
    assert got["validation"] == val and val
    assert got["train"] == sorted(set(halves[0]) - set(val))
    assert p.fold["protocol"] == "emobox" and p.fold["num_folds"] == 2
    assert "EmoBox's 2 ravdess folds" in p.split_description


def test_emobox_missing_or_extra_id_is_an_error_naming_it(corpus, tmp_path):
    from mmer_jax.errors import UsageError

    root, _ = corpus
    _, ex, _ = fx.build_and_read("ravdess", "speech", tmp_path, root)
    stems = sorted(fx.text(e["id"]) for v in ex.values() for e in v)
    dropped, extra = stems[10], "03-01-02-02-02-02-20"  # a stored clip unlisted; a skipped one
    assert extra not in stems
    write_emobox(tmp_path / "EmoBox", "ravdess",
                 {1: {"train": [s for s in stems[8:] if s != dropped] + [extra],
                      "test": stems[:8]}}, wav_of=_ravdess_wav)
    with pytest.raises(UsageError, match="data.emobox_dir") as err:
        _emobox_data(root, tmp_path, fold=1)
    msg = str(err.value)
    assert f"'ravdess-{extra}' -> no stored example" in msg and "ravdess_train_fold_1.jsonl:" in msg
    assert f"stored example '{dropped}' is in no list of EmoBox ravdess fold 1" in msg
    with pytest.raises(UsageError, match="no EmoBox fold files ravdess_"):
        _emobox_data(root, tmp_path / "elsewhere", fold=1)


def test_emobox_fold_plan_and_a_build_that_lists_no_examples(corpus, tmp_path):
    import json

    import ml_collections

    from mmer_jax.data import sources
    from mmer_jax.errors import UsageError
    from mmer_jax.reproduce.harness import fold_plan
    from mmer_jax.schema import DataConfig

    root, _ = corpus
    builder, ex, _ = fx.build_and_read("ravdess", "speech", tmp_path, root)
    stems = sorted(fx.text(e["id"]) for v in ex.values() for e in v)
    write_emobox(tmp_path / "EmoBox", "ravdess", {k: {"train": stems[k:], "test": stems[:k]}
                                                  for k in (1, 2, 3)}, wav_of=_ravdess_wav)
    data = dict(corpus="ravdess", config="speech", data_dir=str(tmp_path), manual_dir=str(root),
                fold_protocol="emobox", emobox_dir=str(tmp_path / "EmoBox"))
    plan = fold_plan(ml_collections.ConfigDict({"data": data}), "all")  # mmer reproduce --folds
    assert (plan["protocol"], plan["num_folds"], plan["folds"]) == ("emobox", 3, [1, 2, 3])
    with pytest.raises(UsageError, match="per-fold data.config='speech_fold2'"):
        fold_plan(ml_collections.ConfigDict({"data": data | {"config": "speech_fold2"}}), "all")
    view = sources.fold_view(builder, DataConfig(**data, fold=2))
    # A build whose folds.json lists no examples (IEMOCAP, MELD, older builds): read the records.
    path = Path(builder.data_dir) / "folds.json"
    doc = json.loads(path.read_text())
    del doc["examples"]
    path.write_text(json.dumps(doc))
    sources._VIEWS.clear()  # read again, not from this process's memory
    assert sources.fold_view(builder, DataConfig(**data, fold=2))["ids"] == view["ids"]
    assert view["ids"]["test"] == set(stems[:2])


def test_cli_build_of_a_per_fold_name_builds_the_base_config(corpus, tmp_path, capsys):
    from mmer_jax.cli import main

    root, _ = corpus
    assert main(["data", "build", "ravdess", "--config", "speech_fold3", "--manual_dir",
                 str(root), "--data_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ravdess/speech test: 12 examples" in out  # the one build, its own splits
    assert ("speech_fold3 is fold 3 of protocol 'actors' over this build (a run reads it with "
            "data.config=speech_fold3, or data.config=speech data.fold=3 "
            "data.fold_protocol=actors)") in out
    assert [p.name for p in (tmp_path / "ravdess").iterdir() if p.name[0] != "."] == ["speech"]
