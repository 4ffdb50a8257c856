"""Per-speaker feature normalisation (``data.speaker_norm``): after it, every speaker's features
average to 0 (and, with "mean_var", have unit variance) over that speaker's clips, in every
split, as the model receives them."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data_prep"))
import fixtures_av as fx  # noqa: E402

from data_prep.build import build  # noqa: E402
from data_prep.emodb import emodb  # noqa: E402
from mmer_jax.data import device, speaker_norm  # noqa: E402
from mmer_jax.data.pipeline import make_pipeline  # noqa: E402
from mmer_jax.errors import RunError, UsageError  # noqa: E402
from mmer_jax.schema import DataConfig, from_section  # noqa: E402


@pytest.fixture(scope="module")
def emodb_tones(tmp_path_factory):
    """10 speakers x 2 clips of different lengths; each speaker's own pitch, so raw features
    differ between speakers."""
    root = tmp_path_factory.mktemp("emodb_tones")
    for i, spk in enumerate(emodb.SPEAKERS):
        for j in range(2):
            stem = f"{spk}a0{j + 1}{'WLEAFTN'[(i + j) % 7]}a"
            fx.write_wav(root / "wav" / f"{stem}.wav", 0.3 + 0.2 * j, 16000, freq=150 + 60 * i)
    data_dir = tmp_path_factory.mktemp("tfds")
    build("emodb", "default", str(data_dir), str(root))
    return root, data_dir


def _features_by_speaker(root, data_dir, tmp_path, **kw):
    data = DataConfig(corpus="emodb", data_dir=str(data_dir), manual_dir=str(root),
                      read_threads=0, feature_norm=False, **kw)
    p = make_pipeline(data, ["audio"], seed=0, workdir=str(tmp_path))
    out: dict[str, list[np.ndarray]] = {}
    for split in ("train", "validation", "test"):
        speakers = [p.sources[split][i]["speaker"].decode() for i in range(len(p.sources[split]))]
        row = 0
        for batch in p.batches(split, 4):
            model = device.prepare(batch, data)
            feats, mask = np.asarray(model["audio"]), np.asarray(model["audio_mask"])
            for b in range(len(feats)):
                if batch["weight"][b] > 0:
                    out.setdefault(speakers[row], []).append(feats[b][mask[b]])
                    row += 1
    return {s: np.concatenate(v) for s, v in out.items()}, p


@pytest.mark.parametrize("mode", ["mean", "mean_var"])
def test_each_speaker_is_centred_in_every_split(emodb_tones, tmp_path, mode):
    root, data_dir = emodb_tones
    feats, p = _features_by_speaker(root, data_dir, tmp_path, speaker_norm=mode)
    assert sorted(feats) == list(emodb.SPEAKERS)  # test and validation speakers too
    for spk, f in feats.items():
        np.testing.assert_allclose(f.mean(0), 0.0, atol=2e-3, err_msg=spk)
        if mode == "mean_var":
            np.testing.assert_allclose(f.std(0), 1.0, atol=2e-2, err_msg=spk)
    saved = speaker_norm.load_statistics(str(tmp_path / speaker_norm.STATS_FILE))
    assert {s: v["clips"] for s, v in saved.items()} == {s: 2 for s in emodb.SPEAKERS}


def test_without_it_speakers_differ(emodb_tones, tmp_path):
    """The check above can fail: raw features of these speakers are far from centred."""
    root, data_dir = emodb_tones
    feats, p = _features_by_speaker(root, data_dir, tmp_path)
    assert "audio_norm" not in next(p.batches("train", 4, train=True))
    means = np.stack([f.mean(0) for f in feats.values()])
    assert np.abs(means).max() > 1.0
    assert np.abs(means - means.mean(0)).max() > 0.1


def test_statistics_need_a_speaker_field():
    data = DataConfig(feature_norm=False, speaker_norm="mean")
    with pytest.raises(RunError, match="speaker"):
        speaker_norm.speaker_statistics([{"audio": np.zeros(1600, np.int16)}], data)


@pytest.mark.parametrize("extra, match", [
    ({"feature_norm": True}, "data.feature_norm.*set feature_norm=False"),
    ({"feature_norm": False, "unit": "dialogue"}, "unit='utterance'"),
])
def test_config_errors_name_the_key(extra, match):
    with pytest.raises(UsageError, match=match):
        from_section(DataConfig, {"speaker_norm": "mean", **extra}, "data")
    with pytest.raises(UsageError, match="speaker_norm"):
        from_section(DataConfig, {"speaker_norm": "global", "feature_norm": False}, "data")
