"""The reported tables are internally consistent where the papers are, and flagged where not."""

import numpy as np
import pytest

from mmer_jax.reproduce import papers


def test_every_entry_has_a_source_and_sane_values():
    assert len(papers.RESULTS) > 20
    for r in papers.RESULTS:
        assert r.source and r.corpus and r.protocol
        assert all(0 <= v <= 100 for k, v in r.metrics.items() if k != "time_s")


def test_s002_confusion_matrix_reproduces_table2():
    cm = papers.confusion_metrics(papers.S002_CONFUSION, papers.IEMOCAP_CLASSES)
    assert cm["n"] == 1623
    assert np.sum(papers.S002_CONFUSION, axis=1).tolist() == list(papers.IEMOCAP_TEST_SUPPORT)
    (s002,) = papers.lookup("s002", "IEMOCAP")
    assert cm["acc"] == pytest.approx(s002.metrics["acc"], abs=0.05)
    assert cm["wf1"] == pytest.approx(s002.metrics["wf1"], abs=0.1)
    for c in papers.IEMOCAP_CLASSES:  # Table 2's per-class "Acc" is the precision
        assert cm[f"{c}_precision"] == pytest.approx(s002.metrics[f"{c}_acc"], abs=0.06)
        assert cm[f"{c}_f1"] == pytest.approx(s002.metrics[f"{c}_f1"], abs=0.06)


def test_s002_averages_are_support_weighted():
    w = np.asarray(papers.IEMOCAP_TEST_SUPPORT, float)
    for name in ("text_cnn", "bc_lstm", "cmn", "s002"):
        rows, (acc, wf1) = papers.S002_TABLE2[name]
        f1 = np.array([f for _, f in rows])
        assert float(f1 @ w / w.sum()) == pytest.approx(wf1, abs=0.2)


def test_s001_confusion_matrices_disagree_with_captions():
    figure = {"video": "Fig. 5", "audio": "Fig. 6", "fused": "Fig. 7"}
    for branch, fig in figure.items():
        cm = papers.confusion_metrics(papers.S001_CONFUSION[branch])
        (caption,) = [r for r in papers.lookup("s001") if fig in r.source]
        assert cm["n"] < 260  # about 250 of 1,440 clips, not the whole corpus
        assert cm["acc"] < caption.metrics["acc"] - 10, branch


def test_reported_entries_for_the_harness():
    s002 = papers.reported("s002", "iemocap_text")
    assert s002["metrics"] == {"accuracy": 61.7, "weighted_f1": 61.0}
    assert s002["per_class"]["happy"]["precision"] == 45.3
    assert s002["per_class"]["happy"]["recall"] == pytest.approx(100 * 43 / 144)
    assert set(s002["baselines"]) >= {"text_cnn", "bc_lstm", "cmn"}
    assert papers.reported("cmn", "iemocap_text")["metrics"]["accuracy"] == 56.5
    s001 = papers.reported("s001", "ravdess_av")
    assert s001["metrics"]["accuracy"] == 85.02 and "audio only" in s001["variants"]
    assert s001["variants"]["fused_dropout05"]["accuracy"] == 77.99
    assert s001["variants"]["fused"]["accuracy"] == 72.17
    assert papers.reported("s003", "meld") is None
    assert papers.reported("s002", "emodb") is None


def test_floors_come_from_results_and_refuse_an_ambiguous_registry(monkeypatch):
    (single,) = papers.lookup("tfidf_logreg", "IEMOCAP text")
    got = papers.floors("iemocap_text")
    assert [f["accuracy"] for f in got] == [single.metrics["acc"], 58.0]
    assert [f["weighted_f1"] for f in got] == [single.metrics["wf1"], 57.9]
    assert {f["source"] for f in got} == {"ANCHORS.md §2"}
    assert papers.floors("meld") == []
    # Another recipe on the same corpus and split shares its floors; an unrelated prefix does not.
    assert papers.floors("iemocap_text_paper") == got
    assert papers.floors("iemocap_textual") == []
    monkeypatch.setitem(papers.FLOORS, "meld", (("no_such_system", "x"),))
    with pytest.raises(ValueError, match="no_such_system"):
        papers.floors("meld")
