"""The saved survey text classifier (arrays + JSON, no pickle) scores exactly as the fitted one."""

import json

import numpy as np
import pytest

from mmer_jax.fitted.survey_text import classifier as st
from mmer_jax.fitted.survey_text.saved import SavedSurveyText
from tests.classic.test_survey_text import _corpus, _random_embed


def _fitted(num_classes, concat, labels_map=None):
    tokens, labels = _corpus(90, 0)
    if labels_map is not None:
        labels = np.asarray([labels_map[y] for y in labels])
    vocab, vectors = _random_embed(tokens)
    feats = st.ScoreFeatures(st.make_tfidf(tokens), vocab, vectors, 4, num_classes, seed=0)
    feats.fit(tokens, labels)
    return st.SurveyTextClassifier(feats, 1.0, concat).fit(tokens, labels)


@pytest.mark.parametrize("concat", [False, True])
def test_saved_arrays_give_the_fitted_probabilities(tmp_path, concat):
    clf = _fitted(3, concat)
    saved = SavedSurveyText.from_classifier(clf, 3, "clusters=4")
    saved.save(str(tmp_path))
    loaded = SavedSurveyText.load(str(tmp_path))
    held_out, _ = _corpus(30, 7)
    held_out[0] = held_out[0] + ["zebra"]  # an unseen word is ignored by both
    held_out[1] = ["zebra"]  # no known word at all: an all-zero TF-IDF row
    np.testing.assert_allclose(loaded.predict_proba(held_out), clf.predict_proba(held_out),
                               rtol=1e-9, atol=1e-12)
    assert json.loads((tmp_path / "classifier.json").read_text())["setting"] == "clusters=4"
    # The numbers are plain arrays: readable without pickle.
    with np.load(tmp_path / "classifier.npz", allow_pickle=False) as z:
        assert z["coef"].dtype == np.float64


def test_classes_the_regression_never_saw_get_zero_and_binary_uses_one_logit():
    # Only classes 0 and 2 of 3 in training: scikit-learn fits one logit for classes_ [0, 2].
    clf = _fitted(3, False, labels_map={0: 0, 1: 2, 2: 2})
    saved = SavedSurveyText.from_classifier(clf, 3)
    tokens, _ = _corpus(12, 3)
    p = saved.predict_proba(tokens)
    assert saved.coef.shape[0] == 1
    np.testing.assert_allclose(p[:, [0, 2]], clf.predict_proba(tokens), rtol=1e-9)
    np.testing.assert_array_equal(p[:, 1], 0.0)
    np.testing.assert_allclose(p.sum(1), 1.0)


def test_inconsistent_arrays_and_unknown_format_are_refused(tmp_path):
    saved = SavedSurveyText.from_classifier(_fitted(3, False), 3)
    with pytest.raises(ValueError, match="inconsistent"):
        SavedSurveyText(saved.vocabulary[:-1], saved.idf, saved.word_weights, saved.mean,
                        saved.scale, saved.coef, saved.intercept, saved.classes, 3, False)
    saved.save(str(tmp_path))
    meta = json.loads((tmp_path / "classifier.json").read_text())
    (tmp_path / "classifier.json").write_text(json.dumps(dict(meta, format=99)))
    with pytest.raises(ValueError, match="format 99"):
        SavedSurveyText.load(str(tmp_path))
