import pytest

from mmer_jax.reproduce.class_names import align_class_names, canonical_emotion

IEMOCAP_BUILD = ["hap", "sad", "neu", "ang", "exc", "fru"]
EMODB_BUILD = ["anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"]


def test_the_fields_spellings_meet_on_one_name():
    assert canonical_emotion("hap") == canonical_emotion("Happy") == "happy"
    assert canonical_emotion("happiness") == "happy"
    assert canonical_emotion("anger") == canonical_emotion(" ang ") == "angry"
    assert canonical_emotion("fear") == canonical_emotion("fearful") == "fearful"
    assert canonical_emotion("fru") == "frustrated"
    assert canonical_emotion("pleasant_surprise") == "pleasant_surprise"  # unknown: kept


def test_paper_names_are_rekeyed_by_the_builds_names():
    paper = {"happy": 1, "sad": 2, "neutral": 3, "angry": 4, "excited": 5, "frustrated": 6}
    expected = dict(zip(IEMOCAP_BUILD, range(1, 7), strict=True))
    assert align_class_names(paper, IEMOCAP_BUILD) == expected
    ravdess_paper = {"angry": 0.7, "happy": 0.5, "calm": 0.9}
    # calm has no EmoDB class: left out rather than guessed
    assert align_class_names(ravdess_paper, EMODB_BUILD) == {"anger": 0.7, "happiness": 0.5}


def test_two_paper_names_for_one_class_are_refused():
    with pytest.raises(ValueError, match="'hap' and 'happiness' both mean the run's class 'hap'"):
        align_class_names({"hap": 1, "happiness": 2}, IEMOCAP_BUILD)
